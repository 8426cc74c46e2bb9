"""Batch verbs: build and check the items, create (idempotently), aggregate, cancel, notify.

A batch is a parent row; each item is a job of its own on the "batch" queue, so items run in
parallel on however many workers there are and survive a worker's loss (the jobs sweeper
re-enqueues them). The batch's counts and status are recomputed from its items whenever
an item ends.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.utils import timezone

from apps.api import webhooks
from apps.api.items import MAX_DOCUMENTS_PER_ITEM, ItemInvalid, check_fields, get_item_kind
from apps.api.models import (
    BATCH_FINISHED,
    ITEM_FINISHED,
    Batch,
    BatchItem,
    BatchStatus,
    ItemStatus,
)
from apps.jobs import services as jobs
from apps.jobs.models import Job

SIGNATURE_HEADER = "X-Scriptorium-Signature"
MAX_REPORTED_ERRORS = 20


class BatchRefused(Exception):
    """The request is refused and nothing was created; `errors` says why, precisely."""

    def __init__(self, errors: dict | list | str, status: int = 400):
        super().__init__(str(errors))
        self.errors, self.status = errors, status


@dataclass
class Submission:
    batch: Batch
    created: bool


def request_hash(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def count_items(spec: dict) -> tuple[int, str]:
    """How many items a request makes, by arithmetic on the lengths of its lists (nothing is
    built), and how, for the message: `items` plus `questions` × (`document_ids` with
    each_document, else 1)."""
    def size(name: str) -> int:
        value = spec.get(name)
        return len(value) if isinstance(value, list) else 0

    items, questions = size("items"), size("questions")
    per_question = size("document_ids") if spec.get("each_document") is True else 1
    total = items + questions * per_question
    how = (f" ({questions:,} questions × {per_question:,} documents"
           + (f" + {items:,} items" if items else "") + ")") if per_question > 1 else ""
    return total, how


def check_count(spec: dict) -> int:
    """The item count checked against API_BATCH_MAX_ITEMS before any item exists."""
    total, how = count_items(spec)
    limit = settings.API_BATCH_MAX_ITEMS
    if total > limit:
        raise BatchRefused({"items": [f"The batch has {total:,} items{how}; the limit is "
                                      f"{limit:,} (API_BATCH_MAX_ITEMS)."]})
    return total


def check_expanded_size(spec: dict) -> None:
    """each_document repeats every question per document: the stored inputs stay within what
    one request body may hold (API_JSON_MAX_BYTES), by arithmetic again."""
    if spec.get("each_document") is not True:
        return
    chars = sum(len(q) for q in spec.get("questions") or [] if isinstance(q, str))
    total, limit = chars * len(spec.get("document_ids") or []), settings.API_JSON_MAX_BYTES
    if total > limit:
        raise BatchRefused({"questions": [
            f"The questions asked of each document add up to {total:,} characters; at most "
            f"{limit:,} (API_JSON_MAX_BYTES)."]})


def known_documents(team, spec: dict, documents=None) -> set[int]:
    """The ids among the request's document ids (batch-level and per item) that exist in
    this team (among ``documents``, those the submitter may read, when given): one query,
    before any item is built."""
    wanted = set()

    def add(ids) -> None:
        if isinstance(ids, list) and len(ids) <= MAX_DOCUMENTS_PER_ITEM * 10:
            wanted.update(i for i in ids if isinstance(i, int) and not isinstance(i, bool))

    add(spec.get("document_ids"))
    for item in spec.get("items") or []:
        if isinstance(item, dict):
            add(item.get("document_ids"))
            add([item.get("document_id")])
    library = team.documents.all() if documents is None else documents
    return set(library.filter(pk__in=wanted).values_list("pk", flat=True))


def expand_items(spec: dict) -> list[dict]:
    """The items of a request: `items` as given, plus the QA shorthand `questions` asked of
    `document_ids` (one item per question, or per question × document with each_document).
    Batch-level strategy / options / document_ids fill what a QA item leaves out.
    Call check_count first: this builds every item."""
    items = [dict(i) if isinstance(i, dict) else i for i in spec.get("items") or []]
    if spec["kind"] == "qa":
        defaults = {k: spec[k] for k in ("document_ids", "strategy", "options") if k in spec}
        for question in spec.get("questions") or []:
            if spec.get("each_document"):
                items += [{"question": question, "document_ids": [d]}
                          for d in spec.get("document_ids") or []]
            else:
                items.append({"question": question})
        items = [{**defaults, **i} if isinstance(i, dict) else i for i in items]
    else:
        qa_only = [k for k in ("questions", "document_ids", "each_document", "strategy",
                               "options") if k in spec]
        if qa_only:
            raise BatchRefused({k: [f"{k} is for qa batches only; give items."]
                                for k in qa_only})
    return items


def known_collections(team, spec: dict, collections=None) -> set[int]:
    """The ids among the items' collections that exist in this team (among ``collections``,
    those the submitter may read, when given): one query."""
    wanted = {item.get("collection") for item in spec.get("items") or []
              if isinstance(item, dict)}
    wanted = {i for i in wanted if isinstance(i, int) and not isinstance(i, bool)}
    if not wanted:
        return set()
    shelves = team.collections.all() if collections is None else collections
    return set(shelves.filter(pk__in=wanted).values_list("pk", flat=True))


def check_items(team, kind_name: str, raw_items: list, known: set[int] | None = None,
                known_shelves: set[int] | None = None) -> list[dict]:
    """Every item checked (shape, values, document ids of this team); all errors together.
    `known`: the team's ids among those asked for (known_documents), if already looked up;
    `known_shelves` the same for collections (known_collections)."""
    try:
        kind = get_item_kind(kind_name)
    except ItemInvalid as err:
        raise BatchRefused({"kind": [str(err)]}) from None
    if not raw_items:
        raise BatchRefused({"items": ["The batch has no items: give items (or questions and "
                                      "document_ids for a qa batch)."]})
    limit = settings.API_BATCH_MAX_ITEMS
    if len(raw_items) > limit:
        raise BatchRefused({"items": [f"The batch has {len(raw_items):,} items; the limit is "
                                      f"{limit:,} (API_BATCH_MAX_ITEMS)."]})
    errors, clean = [], []
    for index, raw in enumerate(raw_items):
        try:
            clean.append(kind.validate(check_fields(kind, raw)))
        except ItemInvalid as err:
            errors.append(f"item {index}: {err}")
    if not errors:
        if known is None:
            wanted = {i for data in clean for i in kind.document_ids(data)}
            known = set(team.documents.filter(pk__in=wanted).values_list("pk", flat=True))
        for index, data in enumerate(clean):
            unknown = [i for i in kind.document_ids(data) if i not in known]
            if unknown:  # another team's document is as unknown as one that never was
                errors.append(f"item {index}: unknown document id(s) "
                              f"{', '.join(map(str, unknown))}")
        if known_shelves is None:
            wanted = {kind.collection_id(data) for data in clean} - {None}
            known_shelves = set(team.collections.filter(pk__in=wanted).values_list(
                "pk", flat=True)) if wanted else set()
        for index, data in enumerate(clean):
            shelf = kind.collection_id(data)
            if shelf is not None and shelf not in known_shelves:  # hidden = never was
                errors.append(f"item {index}: unknown collection id {shelf}")
    if errors:
        more = len(errors) - MAX_REPORTED_ERRORS
        shown = errors[:MAX_REPORTED_ERRORS] + ([f"… and {more} more"] if more > 0 else [])
        raise BatchRefused({"items": shown})
    return clean


def check_webhook_url(url: str) -> str:
    """http(s) only, to a host whose addresses are all public (SSRF; see apps.api.webhooks)."""
    try:
        return webhooks.check_url(url)
    except webhooks.UnsafeWebhook as err:
        raise BatchRefused({"webhook_url": [str(err)]}) from err


def _existing(team, idempotency_key: str, digest: str) -> Submission | None:
    batch = Batch.objects.filter(team=team, idempotency_key=idempotency_key).first()
    if batch is None:
        return None
    if batch.request_hash != digest:
        raise BatchRefused(
            {"detail": f"The Idempotency-Key “{idempotency_key}” was used for a different "
                       f"request (batch {batch.pk}). Use a new key for a new batch."}, 422)
    return Submission(batch, False)


def submit_batch(team, spec: dict, *, user=None, api_key=None,
                 idempotency_key: str | None = None,
                 admit: Callable[[int], None] | None = None, documents=None,
                 collections=None) -> Submission:
    """Check everything, then create the batch, its items and one job per item at once.

    Counts, document ids and sizes are checked by arithmetic and one query before any item
    is built. With an idempotency key, the same key and body give the batch made the first
    time; the same key with another body is refused (422). `admit(n)` is called with the
    item count of a new, valid batch just before it is created (the item throttle raises
    there). Nothing is enqueued on a refusal. ``documents``: those the submitter may read
    (apps.collections.access); a hidden one is as unknown as one that never was.
    ``collections``: likewise, the collections the submitter may read.
    """
    digest = request_hash(spec)
    if idempotency_key:
        found = _existing(team, idempotency_key, digest)
        # A replay shows nothing its caller may not read: with a hidden document the request
        # goes on and is refused as any request naming an unknown document.
        if found and (documents is None or
                      known_documents(team, spec, documents) == known_documents(team, spec)
                      ) and (collections is None or known_collections(team, spec, collections)
                             == known_collections(team, spec)):
            return found
    check_count(spec)
    check_expanded_size(spec)
    known = known_documents(team, spec, documents)
    items = check_items(team, spec["kind"], expand_items(spec), known,
                        known_collections(team, spec, collections))
    url = check_webhook_url(spec["webhook_url"]) if spec.get("webhook_url") else ""
    if admit is not None:
        admit(len(items))
    try:
        with transaction.atomic():
            batch = Batch.objects.create(
                team=team, created_by=user, api_key=api_key, kind=spec["kind"],
                name=(spec.get("name") or "")[:200], total=len(items),
                idempotency_key=idempotency_key or "", request_hash=digest,
                webhook_url=url,
                webhook_secret=(spec.get("webhook_secret") or secrets.token_urlsafe(32))
                if url else "")
            rows = BatchItem.objects.bulk_create(
                [BatchItem(batch=batch, index=i, kind=batch.kind, input=data)
                 for i, data in enumerate(items)])
            for row in rows:
                row.job = jobs.create_job(team, "batch_item", {"item_id": row.pk}, user=user,
                                          title=f"Batch {batch.pk} item {row.index}")
            BatchItem.objects.bulk_update(rows, ["job"])
    except IntegrityError:  # the same idempotency key submitted twice at once
        found = _existing(team, idempotency_key, digest) if idempotency_key else None
        if found is None:
            raise
        return found
    return Submission(batch, True)


def refresh_batch(batch_id: int) -> Batch:
    """Recount the items; the batch ends when they all have (and then notifies)."""
    with transaction.atomic():
        batch = Batch.objects.select_for_update().get(pk=batch_id)
        counts = dict(batch.items.values_list("status").annotate(n=Count("id")).order_by())
        batch.succeeded = counts.get(ItemStatus.SUCCEEDED, 0)
        batch.failed = counts.get(ItemStatus.FAILED, 0)
        batch.cancelled = counts.get(ItemStatus.CANCELLED, 0)
        finishing = False
        if batch.status not in BATCH_FINISHED:
            if batch.done >= batch.total:
                finishing = True
                if batch.succeeded == batch.total:
                    batch.status = BatchStatus.SUCCEEDED
                elif batch.cancel_requested:
                    batch.status = BatchStatus.CANCELLED
                elif not batch.succeeded:
                    batch.status = BatchStatus.FAILED
                else:
                    batch.status = BatchStatus.PARTIAL
                batch.finished_at = timezone.now()
            elif batch.done or counts.get(ItemStatus.RUNNING):
                batch.status = BatchStatus.RUNNING
        batch.save(update_fields=["succeeded", "failed", "cancelled", "status", "finished_at"])
        if finishing and batch.webhook_url and batch.webhook_job_id is None:
            batch.webhook_job = jobs.create_job(batch.team, "batch_webhook",
                                                {"batch_id": batch.pk},
                                                title=f"Notify: batch {batch.pk} finished")
            batch.save(update_fields=["webhook_job"])
    return batch


# The batch whose items cancel_batch is cancelling in this thread: their hooks leave the
# recount to its end (one recount, not one per item of a 1,000-item batch).
_cancelling: ContextVar[int | None] = ContextVar("cancelling_batch", default=None)


def item_ended(batch_id: int) -> None:
    """An item ended (its job's hook): recount its batch, which may end it."""
    if _cancelling.get() != batch_id:
        refresh_batch(batch_id)


def cancel_batch(batch: Batch) -> Batch:
    """Queued items are cancelled now; running ones stop at their next step. An item
    follows its job (the batch_item hooks, apps/api/runners.py): only items without one
    are marked here."""
    Batch.objects.filter(pk=batch.pk).update(cancel_requested=True)
    cancelling = _cancelling.set(batch.pk)
    try:
        for item in batch.items.exclude(status__in=ITEM_FINISHED).select_related("job"):
            if item.job is not None:
                jobs.cancel(item.job)
            else:
                item.mark(ItemStatus.CANCELLED, error="Cancelled")
    finally:
        _cancelling.reset(cancelling)
    return refresh_batch(batch.pk)


def retry_failed(batch: Batch) -> int:
    """Run the failed items again (each its own job, from the start); a finished batch opens
    again so that it ends, counts and shows its status anew. Returns how many were sent."""
    failed = list(batch.items.filter(status=ItemStatus.FAILED).select_related("job")
                  .exclude(job=None))
    if not failed:
        return 0
    # Opened first: an item that ends at once then recounts an open batch.
    Batch.objects.filter(pk=batch.pk).update(status=BatchStatus.RUNNING, finished_at=None,
                                             cancel_requested=False)
    for item in failed:
        jobs.retry(item.job)  # its on_requeue hook puts the item back to queued
    refresh_batch(batch.pk)
    return len(failed)


def item_progress(item: BatchItem) -> dict:
    job: Job | None = item.job
    if job is None:
        return {"current": 0, "total": 0, "message": ""}
    return {"current": job.progress_current, "total": job.progress_total,
            "message": job.message}


def batch_summary(batch: Batch) -> dict:
    return {
        "id": batch.pk, "kind": batch.kind, "name": batch.name, "status": batch.status,
        "total": batch.total, "succeeded": batch.succeeded, "failed": batch.failed,
        "cancelled": batch.cancelled, "done": batch.done,
        "created_at": batch.created_at.isoformat(),
        "finished_at": batch.finished_at.isoformat() if batch.finished_at else None,
    }


def item_record(item: BatchItem) -> dict:
    """One line of the results: what was asked, what came back, or why not."""
    return {"batch_id": item.batch_id, "index": item.index, "kind": item.kind,
            "status": item.status, "input": item.input, "result": item.result,
            "error": item.error or None}


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
