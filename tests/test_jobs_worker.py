"""The whole job path through a real Celery worker process, on the real broker and database."""

from __future__ import annotations

import pytest
from django.utils import timezone

from apps.jobs import services
from apps.jobs.models import Job, Status
from tests.live_worker import LiveWorker, empty_broker, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

TEXT = "\n\n".join(f"Paragraph {i} has some words in it. And a second sentence." for i in range(40))


@pytest.fixture
def broker():
    with empty_broker() as client:
        yield client


@pytest.fixture
def worker(broker):
    w = LiveWorker(env={"DEMO_JOB_STEP_DELAY": "0.05"}).start()
    yield w
    w.stop()


def _job(pk: int) -> Job:
    return Job.objects.get(pk=pk)


def _done(pk: int):
    job = _job(pk)
    return job if job.is_finished else None


def test_job_runs_in_a_worker_with_progress(team, owner, worker):
    job = services.create_job(team, "word_stats", {"text": TEXT}, user=owner)
    seen = set()

    def finished():
        current = _job(job.pk)
        seen.add((current.status, current.progress_current))
        return current.is_finished

    wait_for(finished, timeout=60, interval=0.02, message="job to finish")
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED, worker.log
    assert job.result["paragraphs"] == 40
    assert job.result["words"] == 40 * 10  # digits are not words
    assert job.progress_current == job.progress_total == 40
    assert job.attempts == 1
    assert job.started_at and job.finished_at and job.worker
    # Progress was visible while it ran, not only at the end.
    assert any(status == Status.RUNNING and 0 < n < 40 for status, n in seen), seen


def test_cancel_a_running_job(team, owner, broker):
    w = LiveWorker(env={"DEMO_JOB_STEP_DELAY": "0.3"}).start()
    try:
        job = services.create_job(team, "word_stats", {"text": TEXT}, user=owner)
        wait_for(lambda: _job(job.pk).progress_current >= 2, timeout=30, message="progress")
        services.cancel(_job(job.pk))
        wait_for(lambda: _done(job.pk), timeout=20, message="cancellation")
        job.refresh_from_db()
        assert job.status == Status.CANCELLED
        assert job.progress_current < 40
        assert job.result is None
    finally:
        w.stop()


def test_failing_job_records_error_and_worker_lives_on(team, owner, worker):
    bad = services.create_job(team, "word_stats", {"text": "   "}, user=owner)
    wait_for(lambda: _done(bad.pk), timeout=30, message="failure")
    bad.refresh_from_db()
    assert bad.status == Status.FAILED
    assert "The text is empty" in bad.error
    good = services.create_job(team, "word_stats", {"text": "Still alive."}, user=owner)
    wait_for(lambda: _done(good.pk), timeout=30, message="next job")
    assert _job(good.pk).status == Status.SUCCEEDED
    assert worker.alive


def test_killed_worker_job_completes_once_after_restart(team, owner, broker, settings):
    settings.JOB_LOST_AFTER = timezone.timedelta(seconds=2)
    first = LiveWorker(env={"DEMO_JOB_STEP_DELAY": "0.2"}).start()
    job = services.create_job(team, "word_stats", {"text": TEXT}, user=owner)
    wait_for(lambda: _job(job.pk).progress_current >= 3, timeout=30, message="progress")
    first.kill()
    old_task_id = _job(job.pk).celery_task_id
    assert _job(job.pk).status == Status.RUNNING  # the row still says running: nobody knows yet

    # No heartbeat for JOB_LOST_AFTER → the sweeper puts the job back on the queue.
    wait_for(lambda: services.sweep_lost_jobs().requeued_running, timeout=20, interval=0.5,
             message="sweeper to requeue")
    job.refresh_from_db()
    assert job.status == Status.QUEUED and job.celery_task_id != old_task_id

    second = LiveWorker(env={"DEMO_JOB_STEP_DELAY": "0.01"}).start()
    try:
        wait_for(lambda: _done(job.pk), timeout=60, message="completion after restart")
        job.refresh_from_db()
        assert job.status == Status.SUCCEEDED, second.log
        assert job.attempts == 2
        assert job.result["paragraphs"] == 40
        finished_at = job.finished_at

        # The dead worker's unacknowledged message comes back (here: restored by hand, as
        # after the visibility timeout). It is stale: the job is not run a second time.
        from workers.celery import app
        with app.connection_for_write() as conn:
            channel = conn.default_channel
            tags = channel.client.hkeys("unacked")
            assert tags, "the killed worker's message should still be unacknowledged"
            for tag in tags:
                channel.qos.restore_by_tag(tag.decode(), channel.client)
        wait_for(lambda: "stale or duplicate" in second.log, timeout=30,
                 message="stale message to be skipped")
        job.refresh_from_db()
        assert job.finished_at == finished_at and job.attempts == 2
    finally:
        second.stop()


def test_message_lost_in_redis_restart_is_sent_again(team, owner, tmp_path, settings):
    """A broker that restarts without the queued message: the sweeper re-enqueues the job."""
    from apps import stack
    from workers.celery import app

    paths = stack.redis_paths(tmp_path / "redis")
    stack.start_redis(paths, persistent=False)
    from apps.settings_test import TEST_REDIS_DB

    url = stack.redis_url_for(paths.socket, db=TEST_REDIS_DB)  # the db the test settings use
    settings.JOB_LOST_AFTER = timezone.timedelta(seconds=0)

    def use_broker(broker_url: str) -> None:
        import kombu.pools

        app.conf.broker_url = broker_url
        kombu.pools.reset()  # close and forget every pooled connection
        app._pool = None  # the next use builds new pools for the new URL
        app.amqp._producer_pool = None

    use_broker(url)
    try:
        job = services.create_job(team, "word_stats", {"text": "Lost and found."}, user=owner)
        from workers.broker import held_task_ids

        assert job.celery_task_id in held_task_ids()
        stack.stop_redis(paths)  # no persistence: the queued message is gone
        stack.start_redis(paths, persistent=False)
        use_broker(url)
        assert job.celery_task_id not in held_task_ids()
        report = services.sweep_lost_jobs()
        assert report.requeued_queued == [job.pk]
        worker = LiveWorker(broker_url=url).start()
        try:
            wait_for(lambda: _done(job.pk), timeout=30, message="job after redis restart")
            job.refresh_from_db()
            assert job.status == Status.SUCCEEDED and job.result["words"] == 3
        finally:
            worker.stop()
    finally:
        use_broker(settings.CELERY_BROKER_URL)
        stack.stop_redis(paths)
