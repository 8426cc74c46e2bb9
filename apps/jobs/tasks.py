"""Celery tasks: thin adapters that hand a job id to the jobs service.

The service enqueues by task name (``jobs.run``), so it never imports this module: the
arrows point one way (tasks → services → the Celery app)."""

from __future__ import annotations

from celery import shared_task
from celery.utils.log import get_task_logger
from django.db import close_old_connections

from apps.jobs import services

log = get_task_logger(__name__)


# No retries here: a transient error is retried by the jobs service through the row (a new
# message after a backoff), which counts the attempts once, against JOB_MAX_ATTEMPTS. A
# Celery retry on top would multiply them.
@shared_task(bind=True, name=services.RUN_TASK, acks_late=True, max_retries=0)
def run_job(self, job_id: int) -> str:
    close_old_connections()  # a worker is a long-lived process: drop dead connections
    # The limits this message was sent with (hard, soft): the soft one is named if it passes.
    soft_limit = (self.request.timelimit or (None, None))[1]
    outcome = services.run(job_id, self.request.id, soft_limit=soft_limit)
    log.info("job %s: %s", job_id, outcome)
    return outcome


@shared_task(name="jobs.sweep", ignore_result=True)
def sweep_jobs() -> dict:
    report = services.sweep_lost_jobs()
    return {"queued": report.requeued_queued, "running": report.requeued_running,
            "failed": report.failed, "cancelled": report.cancelled}
