"""Job kinds of the API: one batch item, and the webhook sent when a batch ends."""

from __future__ import annotations

import json

from django.utils import timezone

from apps.api import services, webhooks
from apps.api.items import get_item_kind
from apps.api.models import ITEM_FINISHED, Batch, BatchItem, BatchStatus, ItemStatus
from apps.jobs.kinds import register
from apps.jobs.services import Superseded
from workers.progress import Cancelled


def _item(job) -> BatchItem | None:
    return (BatchItem.objects.select_related("batch")
            .filter(pk=job.params["item_id"], batch__team=job.team).first())


def item_failed(job, error: str) -> None:
    """Retries exhausted (a backend that stayed down, a document never ready)."""
    item = _item(job)
    if item is not None and item.status not in ITEM_FINISHED:
        item.mark(ItemStatus.FAILED, error=error[:2000])
        services.refresh_batch(item.batch_id)


@register("batch_item", "Batch item", queue="batch", on_failure=item_failed)
def run_batch_item(job, progress) -> dict:
    item = _item(job)
    if item is None:
        return {"skipped": "The batch was deleted."}
    if item.status in ITEM_FINISHED:
        return {"skipped": f"The item is already {item.status}."}
    item.mark(ItemStatus.RUNNING, started_at=timezone.now(), error="")
    Batch.objects.filter(pk=item.batch_id, status=BatchStatus.QUEUED).update(
        status=BatchStatus.RUNNING)
    try:
        result = get_item_kind(item.kind).run(item, job.team, progress)
    except Superseded:
        raise
    except Cancelled:
        item.mark(ItemStatus.CANCELLED, error="Cancelled")
        services.refresh_batch(item.batch_id)
        raise
    except Exception as exc:
        if getattr(exc, "transient", False):  # the job retries; the item waits again
            item.mark(ItemStatus.QUEUED, error=f"Retrying: {exc}"[:2000])
            raise
        message = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
        item.mark(ItemStatus.FAILED, error=message[:2000])
        services.refresh_batch(item.batch_id)
        raise
    item.mark(ItemStatus.SUCCEEDED, result=result)
    services.refresh_batch(item.batch_id)
    return {"batch_id": item.batch_id, "index": item.index}


@register("batch_webhook", "Batch webhook", queue="ingest")
def run_batch_webhook(job, progress) -> dict:
    batch = Batch.objects.filter(pk=job.params["batch_id"], team=job.team).first()
    if batch is None or not batch.webhook_url:
        return {"skipped": "No batch or no webhook."}
    progress(0, 1, f"Posting to {batch.webhook_url}"[:300])
    body = json.dumps({"event": "batch.finished",
                       "batch": services.batch_summary(batch)}).encode()
    headers = {"Content-Type": "application/json",
               services.SIGNATURE_HEADER: services.sign(batch.webhook_secret, body),
               "X-Scriptorium-Event": "batch.finished", "X-Scriptorium-Delivery": str(job.pk),
               "User-Agent": "Scriptorium-Webhook/1"}
    status = webhooks.post(batch.webhook_url, body, headers)  # WebhookFailed: retried
    return {"delivered": True, "status_code": status}
