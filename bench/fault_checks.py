"""What the rows say after a fault run (bench/faults.py): each check's count and a few of
the rows behind it.

Double writes are caught by the database itself: `write_audit` installs a trigger (dropped
afterwards) that records every update of a batch item, chat message or job row that is in
an end state; more than one such write to one row is a duplicated output (an answer or a
result written twice, or an ending overwritten by another).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

AUDIT_TABLE = "bench_fault_writes"
_AUDIT_SQL = """
CREATE TABLE IF NOT EXISTS {table} (id bigserial PRIMARY KEY, tbl text, row_id bigint,
    old_status text, new_status text, at timestamptz DEFAULT clock_timestamp());
CREATE OR REPLACE FUNCTION {table}_record() RETURNS trigger AS $$
BEGIN
  IF NEW.status = ANY(TG_ARGV) AND OLD IS DISTINCT FROM NEW THEN
    INSERT INTO {table} (tbl, row_id, old_status, new_status)
    VALUES (TG_TABLE_NAME, NEW.id, OLD.status, NEW.status);
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
"""


def _audited() -> dict:
    """The tables whose rows hold an output, and their end states, from the models."""
    from apps.api.models import ITEM_FINISHED, BatchItem
    from apps.chat.models import Message, MessageStatus
    from apps.jobs.models import FINISHED, Job

    return {BatchItem._meta.db_table: [str(s) for s in ITEM_FINISHED],
            Message._meta.db_table: [str(MessageStatus.DONE), str(MessageStatus.FAILED)],
            Job._meta.db_table: [str(s) for s in FINISHED]}


@contextlib.contextmanager
def write_audit():
    """Record each update of an output row in an end state while the block runs."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(_AUDIT_SQL.format(table=AUDIT_TABLE))
        cursor.execute(f"TRUNCATE {AUDIT_TABLE}")  # noqa: S608 - constant names
        for table, ends in _audited().items():
            args = ", ".join(f"'{s}'" for s in ends)
            cursor.execute(f"DROP TRIGGER IF EXISTS {AUDIT_TABLE} ON {table}")
            cursor.execute(f"CREATE TRIGGER {AUDIT_TABLE} AFTER UPDATE ON {table} FOR EACH ROW "
                           f"EXECUTE FUNCTION {AUDIT_TABLE}_record({args})")
    try:
        yield
    finally:
        with retrying() as run:
            run(_drop_audit)


def _drop_audit() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table in _audited():
            cursor.execute(f"DROP TRIGGER IF EXISTS {AUDIT_TABLE} ON {table}")


def repeated_writes() -> dict[str, list[dict]]:
    """Per table, the rows written more than once in an end state (what, in order)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tbl, row_id, array_agg(old_status || '>' || new_status "  # noqa: S608
                       f"ORDER BY at) FROM {AUDIT_TABLE} GROUP BY tbl, row_id "
                       f"HAVING count(*) > 1")
        rows = cursor.fetchall()
    found: dict[str, list[dict]] = {}
    for table, pk, writes in rows:
        found.setdefault(table, []).append({"id": pk, "writes": writes})
    return found


@contextlib.contextmanager
def retrying(timeout: float = 60):
    """`run(fn)`: call fn, retrying while the database is unreachable (a restart)."""
    from django.db import close_old_connections, connection
    from django.db.utils import InterfaceError, OperationalError

    def run(fn: Callable):
        deadline = time.monotonic() + timeout
        while True:
            try:
                return fn()
            except (OperationalError, InterfaceError):
                if time.monotonic() > deadline:
                    raise
                connection.close()
                close_old_connections()
                time.sleep(0.5)

    yield run




def check_rows(team, since, *, bound_s: float, poison_id: int | None = None,
               hang_id: int | None = None) -> dict:
    """What the rows say after a run: each check's count and a few of the rows behind it.
    A check passes when its count is 0 (the poison and hang checks: when true)."""
    from django.conf import settings
    from django.db.models import Count, F, Q

    from apps.api.models import BATCH_FINISHED, ITEM_FINISHED, Batch, BatchItem
    from apps.chat.models import Message, MessageStatus
    from apps.documents.models import DocStatus, Document
    from apps.jobs.models import FINISHED, Job, Status

    jobs = Job.objects.filter(team=team, created_at__gte=since)
    items = BatchItem.objects.filter(batch__team=team, batch__created_at__gte=since)
    replies = Message.objects.filter(conversation__team=team, role="assistant",
                                     created_at__gte=since)
    slow = [j for j in jobs.filter(status__in=FINISHED)
            if (j.finished_at - j.created_at).total_seconds() > bound_s]

    def ids(query) -> dict:
        found = list(query.values_list("pk", flat=True)[:20])
        return {"count": query.count(), "examples": found}

    checks = {
        "jobs unfinished": ids(jobs.exclude(status__in=FINISHED)),
        "jobs over the bound": {"count": len(slow), "examples": [j.pk for j in slow[:20]]},
        "jobs failed without a reason": ids(jobs.filter(status=Status.FAILED, error="")),
        "items lost (no finished job)": ids(items.filter(
            Q(job=None) | ~Q(job__status__in=FINISHED))),
        "chats lost (no finished job)": ids(replies.filter(
            Q(job=None) | ~Q(job__status__in=FINISHED))),
        "items left queued/running": ids(items.exclude(status__in=ITEM_FINISHED)),
        "chats left pending/streaming": ids(replies.filter(
            status__in=[MessageStatus.PENDING, MessageStatus.STREAMING])),
        "documents left queued/processing": ids(Document.objects.filter(
            team=team, status__in=[DocStatus.QUEUED, DocStatus.PROCESSING])),
        "batches unfinished": ids(Batch.objects.filter(team=team, created_at__gte=since)
                                  .exclude(status__in=BATCH_FINISHED)),
        "items whose status is not their job's": ids(items.filter(
            job__status__in=FINISHED).exclude(status=F("job__status"))),
        "chats done whose job did not succeed": ids(replies.filter(
            status=MessageStatus.DONE).exclude(job__status=Status.SUCCEEDED)),
        "chats failed whose job succeeded": ids(replies.filter(
            status=MessageStatus.FAILED, job__status=Status.SUCCEEDED)),
    }
    writes = repeated_writes()
    for table, rows in sorted(writes.items()):
        checks[f"duplicated writes: {table}"] = {"count": len(rows), "examples": rows[:10]}
    for table in _audited():
        checks.setdefault(f"duplicated writes: {table}", {"count": 0, "examples": []})
    limit = getattr(settings, "JOB_MAX_ATTEMPTS", None)
    if poison_id is not None:
        job = Job.objects.get(pk=poison_id)
        ok = bool(limit) and job.status == Status.FAILED and job.attempts == limit
        checks["poison job failed after JOB_MAX_ATTEMPTS"] = {
            "ok": ok, "status": job.status, "attempts": job.attempts, "limit": limit,
            "error": job.error[:300]}
    if hang_id is not None:
        job = Job.objects.get(pk=hang_id)
        checks["hanging job ended failed (time limit)"] = {
            "ok": job.status == Status.FAILED, "status": job.status, "error": job.error[:300]}
    outcomes = dict(items.values_list("status").annotate(n=Count("id")).order_by())
    errors = dict(items.exclude(error="").values_list("error").annotate(n=Count("id"))
                  .order_by("-n")[:8])
    return {"checks": checks, "items": outcomes, "item errors": errors,
            "chats": dict(replies.values_list("status").annotate(n=Count("id")).order_by())}


def passed(check: dict) -> bool:
    return check["ok"] if "ok" in check else check["count"] == 0


