from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Status(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)


class Job(models.Model):
    """One unit of work. The row, not the broker, is the source of truth for its state."""

    team = models.ForeignKey("teams.Team", on_delete=models.CASCADE, related_name="jobs")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )
    kind = models.CharField(max_length=40)
    title = models.CharField(max_length=200, blank=True)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress_current = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    message = models.CharField(max_length=300, blank=True)
    error = models.TextField(blank=True)
    # A stable code for machines beside `error`: the exception's own `code` (a document's
    # "encrypted"), or the lifecycle's "worker_died", "time_limit", "attempts_exhausted".
    error_code = models.CharField(max_length=40, blank=True)
    result = models.JSONField(null=True, blank=True)
    tokens_in = models.PositiveBigIntegerField(default=0)
    tokens_out = models.PositiveBigIntegerField(default=0)
    model = models.CharField(max_length=200, blank=True)  # the LLM that wrote its tokens
    queue = models.CharField(max_length=20, default="ingest")
    celery_task_id = models.CharField(max_length=64, blank=True, db_index=True)
    worker = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["team", "-created_at"]),
            models.Index(fields=["status", "enqueued_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED

    @property
    def percent(self) -> int:
        if self.status == Status.SUCCEEDED:
            return 100
        if not self.progress_total:
            return 0
        return min(100, round(100 * self.progress_current / self.progress_total))

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None

    @staticmethod
    def new_task_id() -> str:
        return str(uuid.uuid4())
