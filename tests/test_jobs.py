"""The jobs service and pages, without a worker process: claim, progress, cancel, sweep."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from apps.jobs import services
from apps.jobs.models import Job, Status
from tests.live_worker import empty_broker
from workers.progress import Cancelled

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(team, owner):
    # The test's transaction never commits, so no message is sent: the row is what we test.
    return services.create_job(team, "word_stats", {"text": "a b c\n\nd e"}, user=owner)


def test_create_job_queues_with_task_id(job):
    assert job.status == Status.QUEUED and job.celery_task_id and job.enqueued_at
    assert job.queue == "ingest"


def test_stale_message_is_skipped_and_current_one_runs(job):
    assert services.run(job.pk, "some-old-task-id").startswith("skipped")
    assert services.run(job.pk, job.celery_task_id) == "succeeded"
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED and job.result["words"] == 5
    # Delivered again after success: nothing happens.
    assert services.run(job.pk, job.celery_task_id).startswith("skipped")
    job.refresh_from_db()
    assert job.attempts == 1


def test_progress_raises_cancelled_once_cancel_is_requested(job):
    claimed = services.claim(job.pk, job.celery_task_id)
    progress = services.JobProgress(claimed)
    progress(1, 4, "step one")
    claimed.refresh_from_db()
    assert (claimed.progress_current, claimed.progress_total, claimed.message) == (1, 4, "step one")
    services.cancel(claimed)
    with pytest.raises(Cancelled):
        progress(2, 4)


def _synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_progress_commits_without_waiting_for_the_disk_and_only_for_itself(team, owner):
    """Progress, heartbeats and token counts are committed without waiting for the WAL
    flush (many per job); the session's setting is unchanged afterwards, so the job's
    ending still commits durably."""
    with empty_broker():
        job = services.create_job(team, "word_stats", {"text": "a b"}, user=owner)
        claimed = services.claim(job.pk, job.celery_task_id)
        statements: list[str] = []
        with connection.execute_wrapper(
                lambda execute, sql, *rest: statements.append(sql) or execute(sql, *rest)):
            services.JobProgress(claimed)(1, 2, "half")
            services.JobProgress(claimed).add_tokens(10, 3)
            services.Heartbeat(claimed).beat()
        assert sum("SET LOCAL synchronous_commit TO OFF" in sql for sql in statements) == 3
        assert _synchronous_commit() == "on"
        row = Job.objects.get(pk=job.pk)  # committed: read back outside any transaction
        assert (row.progress_current, row.message, row.tokens_in, row.tokens_out) == (
            1, "half", 10, 3)
        # Superseded (the sweeper gave the job a new message) and cancelled stay distinct.
        services.cancel(claimed)
        with pytest.raises(Cancelled):
            services.JobProgress(claimed)(2, 2)
        Job.objects.filter(pk=job.pk).update(celery_task_id="another")
        with pytest.raises(services.Superseded):
            services.JobProgress(claimed)(2, 2)


def test_progress_inside_a_callers_transaction_leaves_its_commit_alone(job):
    claimed = services.claim(job.pk, job.celery_task_id)
    services.JobProgress(claimed)(1, 2)  # the test's transaction is the caller's
    assert _synchronous_commit() == "on"


def _claimed_by(job, worker: str, attempts: int = 1):
    claimed = services.claim(job.pk, job.celery_task_id)
    Job.objects.filter(pk=job.pk).update(worker=worker, attempts=attempts)
    return claimed


def test_a_redelivered_message_whose_worker_died_here_is_recovered_at_once(job, settings):
    """The child running it was killed (a poison file, the OOM killer): Celery redelivers
    the message, which finds the job running under a process that is gone. It is sent
    again now, not after JOB_LOST_AFTER, and fails once it has killed enough workers."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    here = socket.gethostname()
    _claimed_by(job, f"{here}:{gone.pid}")
    task_id = job.celery_task_id
    assert services.run(job.pk, task_id).startswith("recovered")
    job.refresh_from_db()
    assert (job.status, job.message, job.attempts) == (Status.QUEUED, "Worker lost; sent again", 1)
    assert job.celery_task_id != task_id  # a fresh message; the old one is now stale
    _claimed_by(job, f"{here}:{gone.pid}", attempts=settings.JOB_MAX_ATTEMPTS)
    assert services.run(job.pk, job.celery_task_id).startswith("recovered")
    job.refresh_from_db()
    assert job.status == Status.FAILED and job.error_code == "worker_died"
    assert f"died {settings.JOB_MAX_ATTEMPTS} times" in job.error


@pytest.mark.parametrize("where", ["live process here", "another host"])
def test_a_redelivered_message_leaves_a_live_or_unknown_holder_alone(job, where):
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as live:
        try:
            worker = (f"{socket.gethostname()}:{live.pid}" if where == "live process here"
                      else f"elsewhere-{socket.gethostname()}:{live.pid}")
            _claimed_by(job, worker)
            assert services.run(job.pk, job.celery_task_id).startswith("skipped")
        finally:
            live.kill()
    job.refresh_from_db()
    assert (job.status, job.worker) == (Status.RUNNING, worker)


def test_cancel_queued_job_is_immediate(job):
    services.cancel(job)
    job.refresh_from_db()
    assert job.status == Status.CANCELLED and job.finished_at
    assert services.run(job.pk, job.celery_task_id).startswith("skipped")


def test_failure_is_recorded_and_retry_requeues(team, owner):
    job = services.create_job(team, "word_stats", {"text": ""}, user=owner)
    assert services.run(job.pk, job.celery_task_id) == "failed"
    job.refresh_from_db()
    assert job.status == Status.FAILED and "The text is empty" in job.error
    old = job.celery_task_id
    services.retry(job)
    job.refresh_from_db()
    assert job.status == Status.QUEUED and job.celery_task_id != old and not job.error


def test_sweeper_requeues_lost_queued_job_and_leaves_held_ones(job, settings):
    settings.JOB_LOST_AFTER = timezone.timedelta(seconds=0)
    Job.objects.filter(pk=job.pk).update(enqueued_at=timezone.now() - timezone.timedelta(1))
    held = services.sweep_lost_jobs(held={job.celery_task_id})
    assert held.requeued_queued == []
    lost = services.sweep_lost_jobs(held=set())
    assert lost.requeued_queued == [job.pk]
    assert Job.objects.get(pk=job.pk).celery_task_id != job.celery_task_id


def test_sweeper_requeues_running_job_without_heartbeat(job, settings):
    settings.JOB_LOST_AFTER = timezone.timedelta(seconds=30)
    services.claim(job.pk, job.celery_task_id)
    assert services.sweep_lost_jobs(held=set()).requeued_running == []  # fresh heartbeat
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timezone.timedelta(1))
    assert services.sweep_lost_jobs(held=set()).requeued_running == [job.pk]
    job.refresh_from_db()
    assert job.status == Status.QUEUED


def test_progress_partial_polls_until_finished(client, team, owner, job):
    client.force_login(owner)
    url = reverse("jobs:progress", kwargs={"team_slug": team.slug, "pk": job.pk})
    running = client.get(url, headers={"HX-Request": "true"})
    assert running.status_code == 200
    assert 'hx-trigger="every 2s"' in running.content.decode()
    services.run(job.pk, job.celery_task_id)
    done = client.get(url, headers={"HX-Request": "true"})
    assert done.status_code == 286  # htmx stops polling
    body = done.content.decode()
    assert "hx-trigger" not in body and "100%" in body


def test_job_form_errors_inline(client, team, owner):
    client.force_login(owner)
    url = reverse("teams:model_status", kwargs={"team_slug": team.slug})  # the demo's page
    for text, error in [("", "Paste some text to count."),
                        ("1234 5678", "The text has no words to count."),
                        ("a\x00b", "Null characters are not allowed.")]:
        response = client.post(url, {"action": "word_stats", "text": text})
        assert response.status_code == 400
        assert error in response.content.decode()
    assert not Job.objects.exists()


def test_job_text_is_escaped_in_pages(client, team, owner):
    client.force_login(owner)
    evil = "<script>alert(1)</script> words here"
    client.post(reverse("teams:model_status", kwargs={"team_slug": team.slug}),
                {"action": "word_stats", "text": evil})
    page = client.get(reverse("jobs:list", kwargs={"team_slug": team.slug})).content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page
