"""Celery tasks: thin adapters that hand a job id to the jobs service.

The service enqueues by task name (``jobs.run``), so it never imports this module: the
arrows point one way (tasks → services → the Celery app)."""

from __future__ import annotations

from celery import shared_task
from celery.utils.log import get_task_logger
from celery.utils.time import get_exponential_backoff_interval
from django.db import close_old_connections

from apps.jobs import services

log = get_task_logger(__name__)


@shared_task(
    bind=True,
    name=services.RUN_TASK,
    acks_late=True,
    max_retries=5,
    retry_backoff=2,
    retry_backoff_max=120,
    retry_jitter=True,
)
def run_job(self, job_id: int) -> str:
    close_old_connections()  # a worker is a long-lived process: drop dead connections
    try:
        outcome = services.run(job_id, self.request.id)
    except Exception as exc:
        if not getattr(exc, "transient", False):
            raise
        if self.request.retries >= self.max_retries:
            services.fail_after_retries(job_id, self.request.id, exc)
            return "failed after retries"
        countdown = get_exponential_backoff_interval(
            factor=self.retry_backoff, retries=self.request.retries,
            maximum=self.retry_backoff_max, full_jitter=self.retry_jitter,
        )
        raise self.retry(exc=exc, countdown=countdown) from exc
    log.info("job %s: %s", job_id, outcome)
    return outcome


@shared_task(name="jobs.sweep", ignore_result=True)
def sweep_jobs() -> dict:
    report = services.sweep_lost_jobs()
    return {"queued": report.requeued_queued, "running": report.requeued_running}
