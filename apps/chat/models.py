from __future__ import annotations

from django.conf import settings
from django.db import models

from workers.qa.options import STRATEGIES as ENGINE_STRATEGIES

# The engine's one list, as form and model choices.
STRATEGIES = [(s.name, s.label) for s in ENGINE_STRATEGIES.values()]


class Conversation(models.Model):
    team = models.ForeignKey("teams.Team", on_delete=models.CASCADE, related_name="conversations")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")
    title = models.CharField(max_length=200, default="New conversation")
    documents = models.ManyToManyField("documents.Document", related_name="conversations",
                                       blank=True)
    # The last strategy asked for in this conversation: the form offers it again.
    strategy = models.CharField(max_length=10, choices=STRATEGIES, default="auto")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]

    def __str__(self) -> str:
        return self.title


class MessageStatus(models.TextChoices):
    PENDING = "pending", "Waiting"
    STREAMING = "streaming", "Answering"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class Message(models.Model):
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE,
                                     related_name="messages")
    role = models.CharField(max_length=10, choices=[("user", "User"), ("assistant", "Assistant")])
    content = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=MessageStatus.choices,
                              default=MessageStatus.DONE)
    strategy = models.CharField(max_length=10, blank=True)  # asked for, then the one used
    reason = models.CharField(max_length=500, blank=True)
    # Asked-for context compression (SCOPE stage): read this many times more, compressed.
    compress = models.FloatField(null=True, blank=True)
    citations = models.JSONField(default=list, blank=True)
    # The grounding check: supported by the citations; or the documents don't appear to
    # answer it (the citations are then the closest passages). Neither: not verified.
    grounded = models.BooleanField(default=False)
    abstained = models.BooleanField(default=False)
    grounding = models.JSONField(default=dict, blank=True)  # verdict, reasons, removed
    # The answer reached its token room: it ends at its last finished sentence.
    shortened = models.BooleanField(default=False)
    trace = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    tokens_in = models.PositiveIntegerField(default=0)
    tokens_out = models.PositiveIntegerField(default=0)
    job = models.ForeignKey("jobs.Job", on_delete=models.SET_NULL, null=True, blank=True,
                            related_name="+")
    reply_to = models.ForeignKey("self", on_delete=models.CASCADE, null=True, blank=True,
                                 related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:40]}"

    @property
    def is_live(self) -> bool:
        return self.status in (MessageStatus.PENDING, MessageStatus.STREAMING)

    @property
    def can_retry(self) -> bool:
        """Ended without an answer (failed or cancelled), with a job to run again."""
        return self.status in (MessageStatus.FAILED, MessageStatus.CANCELLED) and \
            self.job_id is not None
