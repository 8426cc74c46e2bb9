from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.jobs.models import FINISHED


class ProjectStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PLANNING = "planning", "Planning"
    PLANNED = "planned", "Planned"
    WRITING = "writing", "Writing"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class WritingProject(models.Model):
    team = models.ForeignKey("teams.Team", on_delete=models.CASCADE,
                             related_name="writing_projects")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")
    title = models.CharField(max_length=200)
    instruction = models.TextField()
    target_words = models.PositiveIntegerField()
    style = models.TextField(blank=True)
    documents = models.ManyToManyField("documents.Document", related_name="writing_projects",
                                       blank=True)
    # A collection as a source: its readable, ready documents at the time each job plans or
    # writes (documents added later are included; services.sources). Emptied, not the
    # project deleted, if the collection goes (it can only go once empty).
    collection = models.ForeignKey("collections.Collection", on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="writing_projects")
    # The collection's documents a job wrote from: what the written text may quote, so that
    # access (apps.collections.access.visible_projects) and the reference list follow it.
    drawn = models.ManyToManyField("documents.Document", related_name="drawn_by_projects",
                                   blank=True)
    status = models.CharField(max_length=10, choices=ProjectStatus.choices,
                              default=ProjectStatus.DRAFT)
    plan_source = models.CharField(max_length=10, blank=True)  # model | repaired | fallback | user
    plan_note = models.TextField(blank=True)
    plan_trace = models.JSONField(default=list, blank=True)
    # What the instruction asks for (workers.writing.instruction.Spec as a dict): the parts,
    # units, scheduled items and constraints the plan and each section are checked against.
    requirements = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    # The job that plans or writes now (the outline is locked while it runs).
    job = models.ForeignKey("jobs.Job", on_delete=models.SET_NULL, null=True, blank=True,
                            related_name="+")
    tokens_in = models.PositiveBigIntegerField(default=0)
    tokens_out = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]

    def __str__(self) -> str:
        return self.title

    @property
    def is_busy(self) -> bool:
        """A plan or write job is queued or running: the outline is locked. A job that
        ended without its runner (cancelled while queued) does not keep the lock."""
        if self.status not in (ProjectStatus.PLANNING, ProjectStatus.WRITING):
            return False
        return self.job is None or self.job.status not in FINISHED


class SectionStatus(models.TextChoices):
    PENDING = "pending", "Not written"
    WRITING = "writing", "Writing"
    DONE = "done", "Written"
    EMPTY = "empty", "Empty (the model wrote nothing)"


class Section(models.Model):
    project = models.ForeignKey(WritingProject, on_delete=models.CASCADE,
                                related_name="sections")
    position = models.PositiveIntegerField()  # 1-based
    point = models.TextField()
    target_words = models.PositiveIntegerField()
    text = models.TextField(blank=True)
    words = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=SectionStatus.choices,
                              default=SectionStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    rounds = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(default=0)
    trace = models.JSONField(default=list, blank=True)
    # The instruction parts, units and items it serves ("part:1", "unit:24", "item:2").
    serves = models.JSONField(default=list, blank=True)
    # Its constraints as checked after writing (workers.writing.checks.Check dicts).
    checks = models.JSONField(default=list, blank=True)
    # When its text was saved: a section saved before an earlier one was (re)written
    # followed a text that has changed since (document.mark_older_context).
    written_at = models.DateTimeField(null=True, blank=True)
    # Written from reference documents: marker [k] of the text → citations[k - 1]
    # ({document_id, start, end, quote}: an exact span the grounding check found to support
    # the sentence), and what the check found (sentences, cited, removed markers).
    citations = models.JSONField(default=list, blank=True)
    citing = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["project", "position"],
                                               name="unique_section_position")]

    def __str__(self) -> str:
        return f"{self.position}. {self.point[:60]}"

    @property
    def is_written(self) -> bool:
        return self.status in (SectionStatus.DONE, SectionStatus.EMPTY)
