from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.jobs.models import FINISHED, Status


class Scope(models.TextChoices):
    READ = "read", "Read"
    WRITE = "write", "Read and write"


class ApiKey(models.Model):
    """A team's API key. Only a hash of the secret is kept; the prefix identifies it in lists."""

    team = models.ForeignKey("teams.Team", on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=80)
    prefix = models.CharField(max_length=24, unique=True)
    secret_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)  # ["read"] or ["read", "write"]
    # None: the whole team; some: only the documents in these (apps.collections.access).
    collections = models.ManyToManyField("collections.Collection", blank=True,
                                         related_name="api_keys")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    # DRF and the access helper ask a principal these.
    is_authenticated = True


class BatchStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    PARTIAL = "partial", "Finished with errors"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


BATCH_FINISHED = (BatchStatus.SUCCEEDED, BatchStatus.PARTIAL, BatchStatus.FAILED,
                  BatchStatus.CANCELLED)


# An item's status is its job's status (apps.jobs), kept on the item for fast counts.
ItemStatus = Status
ITEM_FINISHED = FINISHED


class Batch(models.Model):
    """A parent of many items; each item is a job of its own, so they run in parallel."""

    team = models.ForeignKey("teams.Team", on_delete=models.CASCADE, related_name="batches")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")
    api_key = models.ForeignKey(ApiKey, on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="batches")
    kind = models.CharField(max_length=20)
    name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=10, choices=BatchStatus.choices,
                              default=BatchStatus.QUEUED)
    total = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    cancelled = models.PositiveIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    idempotency_key = models.CharField(max_length=200, blank=True)
    request_hash = models.CharField(max_length=64, blank=True)
    webhook_url = models.URLField(max_length=500, blank=True)
    webhook_secret = models.CharField(max_length=200, blank=True)
    webhook_job = models.ForeignKey("jobs.Job", on_delete=models.SET_NULL, null=True,
                                    blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # Only batches sent with an Idempotency-Key are unique by it.
            models.UniqueConstraint(fields=["team", "idempotency_key"],
                                    condition=~models.Q(idempotency_key=""),
                                    name="unique_batch_idempotency_key"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} batch #{self.pk} ({self.status})"

    @property
    def done(self) -> int:
        return self.succeeded + self.failed + self.cancelled

    @property
    def is_finished(self) -> bool:
        return self.status in BATCH_FINISHED


class BatchItem(models.Model):
    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="items")
    index = models.PositiveIntegerField()
    kind = models.CharField(max_length=20)
    input = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=ItemStatus.choices,
                              default=ItemStatus.QUEUED)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    job = models.ForeignKey("jobs.Job", on_delete=models.SET_NULL, null=True, blank=True,
                            related_name="+")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["batch_id", "index"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "index"], name="unique_batch_item_index"),
        ]

    def __str__(self) -> str:
        return f"item {self.index} of batch {self.batch_id}"

    def mark(self, status: str, **fields) -> None:
        fields["status"] = status
        if status in ITEM_FINISHED:
            fields.setdefault("finished_at", timezone.now())
        BatchItem.objects.filter(pk=self.pk).update(**fields)
