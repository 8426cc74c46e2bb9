"""Job kinds of the API: one batch item, and the webhook sent when a batch ends.

The item runner only works; the item (and its batch's counts) follow the job through the
hooks below, which apps/jobs calls once per move of the job (apps/jobs/kinds.py)."""

from __future__ import annotations

import json

from django.utils import timezone

from apps.api import services, webhooks
from apps.api.items import get_item_kind
from apps.api.models import ITEM_FINISHED, Batch, BatchItem, BatchStatus, ItemStatus
from apps.jobs.kinds import Hooks, register


def _item(job) -> BatchItem | None:
    return (BatchItem.objects.select_related("batch")
            .filter(pk=job.params["item_id"], batch__team_id=job.team_id).first())


def _end_item(job, status: str, **fields) -> None:
    """The item ends as its job did, and its batch recounts (and ends, and notifies)."""
    item = _item(job)
    if item is not None and item.status not in ITEM_FINISHED:
        item.mark(status, **fields)
        services.item_ended(item.batch_id)


def on_item_start(job) -> None:
    item = _item(job)
    if item is not None and item.status not in ITEM_FINISHED:
        item.mark(ItemStatus.RUNNING, started_at=timezone.now(), error="")
        Batch.objects.filter(pk=item.batch_id, status=BatchStatus.QUEUED).update(
            status=BatchStatus.RUNNING)


def on_item_success(job, result: dict) -> None:
    if "result" in result:
        _end_item(job, ItemStatus.SUCCEEDED, result=result["result"])


def on_item_failure(job, error: str) -> None:
    _end_item(job, ItemStatus.FAILED, error=error[:2000])


def on_item_cancel(job) -> None:
    _end_item(job, ItemStatus.CANCELLED, error="Cancelled")


def on_item_requeue(job, reason: str) -> None:
    """Waiting again; the reason (a retry's error) is shown until it runs."""
    item = _item(job)
    if item is not None:
        item.mark(ItemStatus.QUEUED, error=reason[:2000])


ITEM_HOOKS = Hooks(on_start=on_item_start, on_success=on_item_success,
                   on_failure=on_item_failure, on_cancel=on_item_cancel,
                   on_requeue=on_item_requeue)


@register("batch_item", "Batch item", queue="batch", hooks=ITEM_HOOKS)
def run_batch_item(job, progress) -> dict:
    item = _item(job)
    if item is None:
        return {"skipped": "The batch was deleted."}
    if item.status in ITEM_FINISHED:
        return {"skipped": f"The item is already {item.status}."}
    result = get_item_kind(item.kind).run(item, job.team, progress)
    return {"batch_id": item.batch_id, "index": item.index, "result": result}


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
