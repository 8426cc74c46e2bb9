"""Sending a job's message: its queue and time limits, and the per-team caps.

A kind capped in settings.JOB_TEAM_CAPS has at most that many jobs per team dispatched (a
message on the broker) or running at once. The others stay queued on their rows with
`enqueued_at` null and no message (the sweeper, which looks at `enqueued_at`, leaves them
alone); when a job of the kind ends, `release` sends the team's next waiting ones, and every
sweep tops up in case an ending was missed (a worker killed mid-job). So one team's
1,000-item batch puts 4 messages on the broker, not 1,000 ahead of everyone else's.

The services call `submit` where they used to send; this module never imports them.
"""

from __future__ import annotations

import logging
import zlib

from celery.signals import task_postrun
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from apps.jobs.kinds import get_kind
from apps.jobs.models import Job, Status
from workers.celery import app as celery_app
from workers.queues import JOB_QUEUES

log = logging.getLogger(__name__)
RUN_TASK = "jobs.run"  # apps/jobs/tasks.py: sent by name


def time_limits(kind: str) -> tuple[float | None, float | None]:
    """(soft, hard) seconds for a kind: its entry in JOB_TIME_LIMITS, else the default."""
    limits = settings.JOB_TIME_LIMITS
    return limits.get(kind) or limits.get("default") or (None, None)


def send_options(job: Job) -> dict:
    soft, hard = time_limits(job.kind)
    # A row from before the queues were split names a queue nobody serves now: use its kind's.
    queue = job.queue if job.queue in JOB_QUEUES else get_kind(job.kind).queue
    return {"queue": queue, "soft_time_limit": soft, "time_limit": hard}


def team_cap(kind: str) -> int:
    return int(settings.JOB_TEAM_CAPS.get(kind) or 0)


def _send(job: Job) -> None:
    """Send the job's message (with its current task id) once the transaction commits."""
    job_id, task_id, options = job.pk, job.celery_task_id, send_options(job)
    transaction.on_commit(
        lambda: celery_app.send_task(RUN_TASK, args=[job_id], task_id=task_id, **options)
    )


def _lock(team_id: int, kind: str) -> None:
    """Serialise admissions for one team and kind until the transaction ends, so that two
    processes never both see the last free slot."""
    key = zlib.crc32(f"jobs.dispatch:{team_id}:{kind}".encode())
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def _active(team_id: int, kind: str):
    """The team's jobs of the kind that hold a slot: running, or queued with a message."""
    return Job.objects.filter(team_id=team_id, kind=kind).filter(
        Q(status=Status.RUNNING) | Q(status=Status.QUEUED, enqueued_at__isnull=False)
    )


def _waiting(team_id: int, kind: str):
    return Job.objects.filter(team_id=team_id, kind=kind, status=Status.QUEUED,
                              enqueued_at__isnull=True)


def submit(job: Job) -> bool:
    """Send the job (its row already has its task id and `enqueued_at`), or, when its team
    is at the kind's cap, hold it on the row (`enqueued_at` cleared). True when sent."""
    cap = team_cap(job.kind)
    if cap:
        with transaction.atomic():
            _lock(job.team_id, job.kind)
            if _active(job.team_id, job.kind).exclude(pk=job.pk).count() >= cap:
                Job.objects.filter(pk=job.pk).update(enqueued_at=None)
                job.enqueued_at = None
                return False
    _send(job)
    return True


def release(team_id: int, kind: str) -> list[int]:
    """Send the team's oldest waiting jobs of the kind into its free slots; their ids."""
    cap = team_cap(kind)
    if not cap:
        return []
    with transaction.atomic():
        _lock(team_id, kind)
        free = cap - _active(team_id, kind).count()
        if free <= 0:
            return []
        jobs = list(_waiting(team_id, kind).order_by("created_at", "id")[:free])
        for job in jobs:
            job.enqueued_at = timezone.now()
            job.save(update_fields=["enqueued_at"])
            _send(job)
    return [job.pk for job in jobs]


def top_up() -> list[int]:
    """Fill every team's free slots (the sweeper: an ending whose release was missed)."""
    sent: list[int] = []
    for kind in (kind for kind in settings.JOB_TEAM_CAPS if team_cap(kind)):
        teams = (Job.objects.filter(kind=kind, status=Status.QUEUED, enqueued_at__isnull=True)
                 .values_list("team_id", flat=True).distinct())
        for team_id in list(teams):
            sent += release(team_id, kind)
    if sent:
        log.info("dispatch: sent %d waiting jobs", len(sent))
    return sent


@task_postrun.connect
def _release_after_run(sender=None, args=None, **kwargs) -> None:
    """After each `jobs.run` message (whatever it did), fill the slot its job may have freed."""
    if getattr(sender, "name", None) != RUN_TASK or not args:
        return
    job = Job.objects.filter(pk=args[0]).values("team_id", "kind").first()
    if job and team_cap(job["kind"]):
        release(job["team_id"], job["kind"])
