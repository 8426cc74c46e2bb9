"""Job verbs: create, enqueue, run (claim, progress, finish), cancel, sweep.

The row is the source of truth. A message on the broker only says "look at job N"; the task
id on the row says which message is the current one, so a stale or duplicated message (a
redelivery after a worker died, a re-enqueue by the sweeper) finds the row claimed or
re-assigned and does nothing. That is how a job completes once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from apps.jobs import dispatch
from apps.jobs.kinds import get_kind
from apps.jobs.models import FINISHED, Job, Status
from workers.broker import held_task_ids
from workers.progress import Cancelled

log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 10.0
RUN_TASK = dispatch.RUN_TASK  # apps/jobs/tasks.py: sent by name, never imported here


class Superseded(Exception):
    """This worker no longer owns the job (it was re-enqueued or finished elsewhere)."""


def create_job(team, kind: str, params: dict, *, user=None, title: str = "") -> Job:
    spec = get_kind(kind)
    job = Job.objects.create(
        team=team, created_by=user, kind=kind, params=params, queue=spec.queue,
        title=title[:200] or spec.label, message="Waiting for a worker",
    )
    enqueue(job)
    return job


def enqueue(job: Job) -> None:
    """Give the job a fresh task id and send its message once the transaction commits."""
    job.celery_task_id = Job.new_task_id()
    job.enqueued_at = timezone.now()
    job.save(update_fields=["celery_task_id", "enqueued_at"])
    dispatch.submit(job)  # its queue and time limits; held on the row past its team's cap


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def claim(job_id: int, task_id: str) -> Job | None:
    """Mark the job running for this task; None when the message is stale or the job done."""
    claimed = Job.objects.filter(pk=job_id, celery_task_id=task_id, status=Status.QUEUED).update(
        status=Status.RUNNING,
        started_at=timezone.now(),
        heartbeat_at=timezone.now(),
        worker=worker_name(),
        attempts=F("attempts") + 1,
        message="Started",
        error="",
    )
    if not claimed:
        return None
    return Job.objects.select_related("team").get(pk=job_id)


def _owned(job: Job):
    return Job.objects.filter(pk=job.pk, celery_task_id=job.celery_task_id, status=Status.RUNNING)


class JobProgress:
    """The one progress helper: writes progress to the row and raises on cancellation."""

    def __init__(self, job: Job):
        self.job = job

    def __call__(self, current: int, total: int, message: str = "") -> None:
        updated = _owned(self.job).update(
            progress_current=max(0, current), progress_total=max(0, total),
            message=message[:300], heartbeat_at=timezone.now(),
        )
        if not updated:
            raise Superseded(f"job {self.job.pk} is no longer owned by this task")
        if Job.objects.filter(pk=self.job.pk, cancel_requested=True).exists():
            raise Cancelled()

    def add_tokens(self, tokens_in: int, tokens_out: int) -> None:
        _owned(self.job).update(
            tokens_in=F("tokens_in") + tokens_in, tokens_out=F("tokens_out") + tokens_out
        )


class Heartbeat:
    """Touches the row every few seconds while a job runs, so the sweeper can tell a
    long step on a live worker from a worker that died."""

    def __init__(self, job: Job, interval: float = HEARTBEAT_SECONDS):
        self.job, self.interval = job, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"heartbeat-{job.pk}")

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                _owned(self.job).update(heartbeat_at=timezone.now())
        finally:
            connection.close()


def _finish(job: Job, status: str, **fields) -> bool:
    return bool(_owned(job).update(status=status, finished_at=timezone.now(), **fields))


def run(job_id: int, task_id: str) -> str:
    """Run one job for the message `task_id`. Returns what happened, for the logs.

    Exceptions with a true `transient` attribute (a backend that is down, a timeout) are
    re-raised after the row is put back to queued, so that the task retries with backoff.
    """
    job = claim(job_id, task_id)
    if job is None:
        return "skipped: stale or duplicate message"
    progress = JobProgress(job)
    try:
        with Heartbeat(job):
            result = get_kind(job.kind).runner(job, progress)
    except Cancelled:
        _finish(job, Status.CANCELLED, message="Cancelled")
        return "cancelled"
    except Superseded:
        return "superseded"
    except Exception as exc:
        if getattr(exc, "transient", False):
            _owned(job).update(status=Status.QUEUED, message=f"Retrying: {exc}"[:300])
            raise
        log.exception("job %s failed", job.pk)
        _finish(job, Status.FAILED, error=f"{type(exc).__name__}: {exc}", message="Failed")
        return "failed"
    total = Job.objects.filter(pk=job.pk).values_list("progress_total", flat=True).first() or 1
    _finish(job, Status.SUCCEEDED, result=result, message="Done", progress_current=total,
            progress_total=total)
    return "succeeded"


def fail_after_retries(job_id: int, task_id: str, exc: BaseException) -> None:
    error = f"Gave up after retries. {type(exc).__name__}: {exc}"
    failed = Job.objects.filter(pk=job_id, celery_task_id=task_id).exclude(
        status__in=FINISHED).update(status=Status.FAILED, finished_at=timezone.now(),
                                    message="Failed", error=error)
    if failed:
        job = Job.objects.get(pk=job_id)
        on_failure = get_kind(job.kind).on_failure
        if on_failure:
            on_failure(job, error)


def cancel(job: Job) -> Job:
    """Cancel a queued job at once; ask a running one to stop at its next step."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.status == Status.QUEUED:
            job.status, job.finished_at, job.message = Status.CANCELLED, timezone.now(), "Cancelled"
            job.cancel_requested = True
            job.save(update_fields=["status", "finished_at", "message", "cancel_requested"])
        elif job.status == Status.RUNNING:
            job.cancel_requested = True
            job.message = "Cancelling…"
            job.save(update_fields=["cancel_requested", "message"])
    return job


def retry(job: Job) -> Job:
    """Run a failed or cancelled job again from the start, as the same row."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.status not in (Status.FAILED, Status.CANCELLED):
            return job
        job.status, job.error, job.result = Status.QUEUED, "", None
        job.cancel_requested, job.finished_at, job.started_at = False, None, None
        job.progress_current, job.message = 0, "Waiting for a worker"
        job.save()
        enqueue(job)
    return job


# -- The sweeper -----------------------------------------------------------------------------


@dataclass
class SweepReport:
    requeued_queued: list[int]
    requeued_running: list[int]


def sweep_lost_jobs(held: set[str] | None = None) -> SweepReport:
    """Re-enqueue jobs whose message was lost.

    Queued for longer than JOB_LOST_AFTER with its message neither waiting in a queue nor
    held (unacknowledged) by a worker → the broker lost it (e.g. Redis restarted without it).
    Running with no heartbeat for JOB_LOST_AFTER → its worker died.
    """
    cutoff = timezone.now() - settings.JOB_LOST_AFTER
    if held is None:
        held = held_task_ids()
    report = SweepReport([], [])
    for job in Job.objects.filter(status=Status.QUEUED, enqueued_at__lt=cutoff):
        if job.celery_task_id not in held:
            with transaction.atomic():
                if Job.objects.filter(pk=job.pk, status=Status.QUEUED,
                                      celery_task_id=job.celery_task_id).exists():
                    job.message = "Message lost; sent again"
                    job.save(update_fields=["message"])
                    enqueue(job)
                    report.requeued_queued.append(job.pk)
    for job in Job.objects.filter(status=Status.RUNNING, heartbeat_at__lt=cutoff):
        with transaction.atomic():
            stale = Job.objects.filter(pk=job.pk, status=Status.RUNNING,
                                       celery_task_id=job.celery_task_id,
                                       heartbeat_at__lt=cutoff)
            if stale.update(status=Status.QUEUED, message="Worker lost; sent again"):
                job.refresh_from_db()
                enqueue(job)
                report.requeued_running.append(job.pk)
    if report.requeued_queued or report.requeued_running:
        log.warning("sweeper re-enqueued %s", report)
    dispatch.top_up()  # jobs held past their team's cap whose release was missed
    return report
