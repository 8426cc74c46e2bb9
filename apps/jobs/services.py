"""Job verbs: create, enqueue, run (claim, progress, finish), cancel, sweep.

The row is the source of truth. A message on the broker only says "look at job N"; the task
id on the row says which message is the current one, so a stale or duplicated message (a
redelivery after a worker died, a re-enqueue by the sweeper) finds the row claimed or
re-assigned and does nothing. That is how a job completes once.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from apps.jobs import dispatch
from apps.jobs.kinds import get_kind
from apps.jobs.models import Job, Status
from workers.broker import held_task_ids
from workers.celery import app as celery_app
from workers.llm import get_backend
from workers.llm.rates import model_key
from workers.progress import Cancelled

log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 10.0
# Waits between attempts after a transient error (settings.JOB_MAX_ATTEMPTS in all): 2.5–10 s,
# then 2.5–20 s, … — exponential with full jitter, so jobs failed by one outage do not come
# back in step. With the backend's own 10 s of retries per attempt they span about a minute:
# a model server restarting (~30 s) is ridden out (bench faults).
RETRY_BACKOFF, RETRY_BACKOFF_MAX = 5.0, 120.0
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
    """Mark the job running for this task; None when the message is stale or the job done.
    Each claim is one attempt: `attempts` on the row is the one retry counter."""
    claimed = Job.objects.filter(pk=job_id, celery_task_id=task_id, status=Status.QUEUED).update(
        status=Status.RUNNING,
        started_at=timezone.now(),
        heartbeat_at=timezone.now(),
        worker=worker_name(),
        attempts=F("attempts") + 1,
        message="Started",
        error="",
        error_code="",
    )
    if not claimed:
        return None
    return Job.objects.select_related("team").get(pk=job_id)


def _owned(job: Job):
    return Job.objects.filter(pk=job.pk, celery_task_id=job.celery_task_id, status=Status.RUNNING)


@contextmanager
def _unflushed():
    """A transaction whose commit does not wait for the write-ahead log to reach the disk:
    for a running job's progress, heartbeat and token counts, written many times per job.
    Waiting for each flush made them most of a short job's time, and the flushes of every
    worker queue up on one disk. The job's ending commits normally, which flushes these
    writes too; only a job cut short by a database crash can lose them, and it runs again.
    Inside a caller's transaction, nothing changes: its commit is the caller's to make."""
    if connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield


class JobProgress:
    """The one progress helper: writes progress to the row and raises on cancellation."""

    def __init__(self, job: Job):
        self.job = job

    def __call__(self, current: int, total: int, message: str = "") -> None:
        with _unflushed():
            updated = _owned(self.job).filter(cancel_requested=False).update(
                progress_current=max(0, current), progress_total=max(0, total),
                message=message[:300], heartbeat_at=timezone.now(),
            )
        if updated:
            return
        if _owned(self.job).exists():  # still ours, so the update missed on the cancel flag
            raise Cancelled()
        raise Superseded(f"job {self.job.pk} is no longer owned by this task")

    def add_tokens(self, tokens_in: int, tokens_out: int) -> None:
        """Count the model's tokens, and which model it was (the process's configured
        backend: the usage page sums by it)."""
        with _unflushed():
            _owned(self.job).update(
                tokens_in=F("tokens_in") + tokens_in, tokens_out=F("tokens_out") + tokens_out,
                model=model_key(get_backend())[:200],
            )


class Heartbeat:
    """Touches the row every few seconds while a job runs, so the sweeper can tell a
    long step on a live worker from a worker that died. A failed write (the database
    restarting, a connection cut) is logged and the connection closed, so that the next
    beat opens a fresh one: one error must not stop the beats, or 60 s later the sweeper
    takes the live job for a dead one and it runs twice."""

    def __init__(self, job: Job, interval: float = HEARTBEAT_SECONDS):
        self.job, self.interval = job, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"heartbeat-{job.pk}")
        self.beats = self.failures = 0

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)

    def beat(self) -> None:
        try:
            with _unflushed():
                _owned(self.job).update(heartbeat_at=timezone.now())
            self.beats += 1
        except Exception:  # any database error: the next beat tries on a new connection
            self.failures += 1
            log.warning("job %s: heartbeat write failed", self.job.pk, exc_info=True)
            connection.close()

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                self.beat()
        finally:
            connection.close()


# -- Endings: each moves the row conditionally and calls the kind's hook once ----------------


def _call(job: Job, hook: str, *args) -> None:
    function = getattr(get_kind(job.kind).hooks, hook)
    if function is not None:
        function(job, *args)


def _failed_fields(error: str, code: str = "") -> dict:
    return {"status": Status.FAILED, "finished_at": timezone.now(), "message": "Failed",
            "error": error, "error_code": code[:40]}


def _end(job: Job, rows, hook: str, *args, then=None, **fields) -> str | None:
    """Apply `fields` (an ending) to the job if `rows` (its ownership condition) still
    selects it, and call the kind's `hook` in the same transaction. Returns the status the
    row got; None, and no hook, when another process changed the row first (a stale or
    superseded worker).

    A hook that raises rolls its ending back; the job then ends failed with that error (the
    rows told by on_failure), or failed without a hook if on_failure raises too: the row
    never stays running because an app's hook broke. `then(job)` runs after the move,
    before the hook, in the same transaction (a requeue sends the new message there)."""
    try:
        with transaction.atomic():
            if not rows.update(**fields):
                return None
            job.refresh_from_db()
            if then is not None:
                then(job)
            _call(job, hook, *args)
        return job.status
    except Exception as exc:
        log.exception("job %s: its %s hook failed", job.pk, hook)
        error = f"Ending the job failed ({hook}): {type(exc).__name__}: {exc}"
        if hook == "on_failure":
            return Status.FAILED if rows.update(**_failed_fields(error, "hook_failed")) else None
        return _end(job, rows, "on_failure", error, **_failed_fields(error, "hook_failed"))


def _requeue(job: Job, rows, reason: str, countdown: float = 0) -> str | None:
    """Back to queued with a fresh message (after `countdown` seconds), then on_requeue."""

    def send(job: Job) -> None:
        if countdown:
            _send_later(job, countdown)
        else:
            enqueue(job)

    return _end(job, rows, "on_requeue", reason, status=Status.QUEUED,
                message=(reason or "Waiting for a worker")[:300], then=send)


def _send_later(job: Job, countdown: float) -> None:
    """A retry after a backoff. The job keeps the slot it held while running (its team's
    cap counts it), so it is sent as it is, without waiting for a slot."""
    job.celery_task_id, job.enqueued_at = Job.new_task_id(), timezone.now()
    job.save(update_fields=["celery_task_id", "enqueued_at"])
    job_id, task_id, options = job.pk, job.celery_task_id, dispatch.send_options(job)
    transaction.on_commit(lambda: celery_app.send_task(
        RUN_TASK, args=[job_id], task_id=task_id, countdown=countdown, **options))


def failure_text(job: Job, exc: BaseException) -> str:
    """What a failed job and its rows show: a message meant for people (the kind's
    `plain_errors`) as it is, any other error as "Type: message"."""
    if isinstance(exc, get_kind(job.kind).plain_errors):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def backoff(attempt: int) -> float:
    """Seconds before retry `attempt` (1, 2, …): exponential with full jitter, capped."""
    return random.uniform(RETRY_BACKOFF / 2, min(RETRY_BACKOFF_MAX, RETRY_BACKOFF * 2 ** attempt))


def _transient(job: Job, exc: BaseException) -> str:
    """A transient error (a backend down, a document still being read): the job waits and
    tries again, until its attempts run out. The row counts the attempts; nothing else
    retries (the Celery task has no retries of its own)."""
    text, limit = failure_text(job, exc), settings.JOB_MAX_ATTEMPTS
    owned = _owned(job)
    if Job.objects.filter(pk=job.pk, cancel_requested=True).exists():
        return _outcome(_end(job, owned, "on_cancel", **_cancelled_fields()))
    attempts = Job.objects.filter(pk=job.pk).values_list("attempts", flat=True).first() or 0
    if attempts >= limit:
        error = f"Gave up after {attempts} attempts (JOB_MAX_ATTEMPTS={limit}): {text}"
        return _outcome(_end(job, owned, "on_failure", error,
                             **_failed_fields(error, "attempts_exhausted")),
                        Status.FAILED, "failed after retries")
    wait = backoff(attempts)
    reason = f"Retrying in {wait:.0f} s (attempt {attempts} of {limit} failed): {text}"
    return _outcome(_requeue(job, owned, reason, wait), Status.QUEUED, "retrying")


def _outcome(ended: str | None, meant: str = "", word: str = "") -> str:
    """What run() reports: "superseded" when another process moved the row first; `word`
    when the row got the status `meant`; else the status (a hook broke: "failed")."""
    if ended is None:
        return "superseded"
    return word if word and ended == meant else str(ended)


def _cancelled_fields() -> dict:
    return {"status": Status.CANCELLED, "finished_at": timezone.now(), "message": "Cancelled"}


def run(job_id: int, task_id: str, soft_limit: float | None = None) -> str:
    """Run one job for the message `task_id`. Returns what happened, for the logs.

    The runner does the work; the endings (and the kind's hooks) are here and nowhere else.
    Exceptions with a true `transient` attribute (a backend that is down, a timeout) put the
    row back to queued and send it again after a backoff, until JOB_MAX_ATTEMPTS.
    `soft_limit`: the soft time limit the message was sent with (else the kind's setting).
    """
    job = claim(job_id, task_id)
    if job is None:
        if recover_from_dead_holder(job_id, task_id):
            return "recovered: the worker that held it died"
        return "skipped: stale or duplicate message"
    kind = get_kind(job.kind)
    owned = _owned(job)
    try:
        with Heartbeat(job):
            with transaction.atomic():  # the hook's writes in one commit
                _call(job, "on_start")
            result = kind.runner(job, JobProgress(job))
    except Superseded:
        return "superseded"
    except Cancelled:
        return _outcome(_end(job, owned, "on_cancel", **_cancelled_fields()))
    except SoftTimeLimitExceeded:
        soft = soft_limit or dispatch.time_limits(job.kind)[0]
        took = f"{soft:.0f} s, the limit" if soft else "the time limit"
        error = f"The job took longer than {took} for {kind.label.lower()} (JOB_TIME_LIMITS)"
        log.warning("job %s: %s", job.pk, error)
        return _outcome(_end(job, owned, "on_failure", error,
                             **_failed_fields(error, "time_limit")),
                        Status.FAILED, "failed: time limit")
    except Exception as exc:
        if getattr(exc, "transient", False):
            return _transient(job, exc)
        log.exception("job %s failed", job.pk)
        error = failure_text(job, exc)
        code = getattr(exc, "code", "")
        return _outcome(_end(job, owned, "on_failure", error,
                             **_failed_fields(error, code if isinstance(code, str) else "")))
    total = Greatest(F("progress_total"), Value(1))
    return _outcome(_end(job, owned, "on_success", result, status=Status.SUCCEEDED,
                         finished_at=timezone.now(), result=result, message="Done",
                         progress_current=total, progress_total=total))


def cancel(job: Job) -> Job:
    """Cancel a queued job at once (its rows too: on_cancel); ask a running one to stop at
    its next step (the worker ends it and calls on_cancel then)."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.status == Status.QUEUED:
            job.status, job.finished_at, job.message = Status.CANCELLED, timezone.now(), "Cancelled"
            job.cancel_requested = True
            job.save(update_fields=["status", "finished_at", "message", "cancel_requested"])
            _call(job, "on_cancel")
        elif job.status == Status.RUNNING:
            job.cancel_requested = True
            job.message = "Cancelling…"
            job.save(update_fields=["cancel_requested", "message"])
    return job


def retry(job: Job) -> Job:
    """Run a failed or cancelled job again from the start, as the same row, with its
    attempts counted afresh; its rows wait again (on_requeue, reason "")."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.status not in (Status.FAILED, Status.CANCELLED):
            return job
        job.status, job.error, job.error_code, job.result = Status.QUEUED, "", "", None
        job.cancel_requested, job.finished_at, job.started_at = False, None, None
        job.progress_current, job.message, job.attempts = 0, "Waiting for a worker", 0
        job.save()
        enqueue(job)
        _call(job, "on_requeue", "")
    return job


# -- The sweeper -----------------------------------------------------------------------------


@dataclass
class SweepReport:
    requeued_queued: list[int]
    requeued_running: list[int]
    failed: list[int] = field(default_factory=list)  # poison: the worker died too often
    cancelled: list[int] = field(default_factory=list)  # cancel asked, the worker died


def _sweep_running(job: Job, stale, report: SweepReport) -> None:
    """A running job without heartbeat: its worker died (or hung with its heartbeat). Sent
    again, unless a user asked to cancel it (cancelled) or it has had JOB_MAX_ATTEMPTS
    attempts already (failed: a job that kills its worker every time is poison)."""
    limit = settings.JOB_MAX_ATTEMPTS
    if job.cancel_requested:
        if _end(job, stale, "on_cancel", **_cancelled_fields()) == Status.CANCELLED:
            report.cancelled.append(job.pk)
    elif job.attempts >= limit:
        error = (f"The worker died {job.attempts} times on this job (JOB_MAX_ATTEMPTS="
                 f"{limit}): it is not sent again")
        if _end(job, stale, "on_failure", error, **_failed_fields(error, "worker_died")):
            report.failed.append(job.pk)
    elif _requeue(job, stale, "Worker lost; sent again") == Status.QUEUED:
        report.requeued_running.append(job.pk)


def _process_gone(worker: str) -> bool:
    """Whether `worker` ("host:pid", worker_name()) names a process of this host that no
    longer runs (exited, or a zombie not yet reaped). Another host's: not known here."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():  # this process is claiming, so it runs no other job
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's process: alive
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return False


def recover_from_dead_holder(job_id: int, task_id: str) -> bool:
    """A message redelivered because the worker child running it died (acks_late with
    reject_on_worker_lost) finds its job still running under that child. When the child was
    on this host and is gone, the job is swept now, as the sweeper would after JOB_LOST_AFTER
    without a heartbeat: sent again, or failed once it has killed JOB_MAX_ATTEMPTS workers.
    True when it was. A live holder (a redelivery while it still runs) is left alone."""
    job = Job.objects.filter(pk=job_id, celery_task_id=task_id, status=Status.RUNNING).first()
    if job is None or not _process_gone(job.worker):
        return False
    stale = Job.objects.filter(pk=job.pk, celery_task_id=task_id, status=Status.RUNNING,
                               worker=job.worker)
    report = SweepReport([], [])
    _sweep_running(job, stale, report)
    log.warning("job %s: its worker %s died; %s", job.pk, job.worker, report)
    return bool(report.requeued_running or report.failed or report.cancelled)


def sweep_lost_jobs(held: set[str] | None = None) -> SweepReport:
    """Re-enqueue jobs whose message was lost; end those that keep killing their worker.

    Queued for longer than JOB_LOST_AFTER with its message neither waiting in a queue nor
    held (unacknowledged) by a worker → the broker lost it (e.g. Redis restarted without it).
    Running with no heartbeat for JOB_LOST_AFTER → its worker died (_sweep_running).
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
        stale = Job.objects.filter(pk=job.pk, status=Status.RUNNING,
                                   celery_task_id=job.celery_task_id, heartbeat_at__lt=cutoff)
        try:
            _sweep_running(job, stale, report)
        except Exception:  # one job's trouble must not stop the sweep of the others
            log.exception("sweeper: job %s", job.pk)
    if report.requeued_queued or report.requeued_running or report.failed or report.cancelled:
        log.warning("sweeper: %s", report)
    dispatch.top_up()  # jobs held past their team's cap whose release was missed
    return report
