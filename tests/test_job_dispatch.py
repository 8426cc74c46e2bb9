"""Fair queues, per-team caps, time limits, the memory cap per child and a sweeper that
cannot starve (issue 17 §2, §3, §6): the broker's contents, then real worker processes."""

from __future__ import annotations

import json
import time

import pytest
from django.utils import timezone

from apps.jobs import dispatch, services
from apps.jobs.kinds import all_kinds, get_kind
from apps.jobs.models import Job, Status
from tests.factories import TeamFactory
from tests.live_worker import LiveWorker, empty_broker, wait_for
from workers import queues
from workers.broker import held_task_ids

pytestmark = pytest.mark.django_db(transaction=True)

TEXT = "\n\n".join(f"Paragraph {i} has some words in it." for i in range(10))
LONG = "\n\n".join(f"Paragraph {i} has some words in it." for i in range(40))


@pytest.fixture
def broker():
    with empty_broker() as client:
        yield client


def _job(team, queue: str = "", text: str = TEXT) -> Job:
    """A word_stats job sent on `queue` (any kind's work is the same to a queue)."""
    if not queue:
        return services.create_job(team, "word_stats", {"text": text})
    job = Job.objects.create(team=team, kind="word_stats", params={"text": text}, queue=queue)
    services.enqueue(job)
    return job


def _messages(client, queue: str) -> list[dict]:
    return [json.loads(raw) for raw in client.lrange(queue, 0, -1)]


def _all_done(jobs) -> bool:
    return not Job.objects.filter(pk__in=[j.pk for j in jobs]).exclude(
        status__in=(Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)).exists()


# -- Routing and send options -----------------------------------------------------------------


def test_every_kind_is_on_a_queue_the_job_worker_serves():
    assert {kind.queue for kind in all_kinds()} <= set(queues.JOB_QUEUES)
    for name in ("qa_answer", "writing_section", "llm_check"):
        assert get_kind(name).queue == queues.INTERACTIVE, name
    for name in ("batch_item", "writing_write", "compress"):
        assert get_kind(name).queue == queues.BATCH, name
    assert queues.JOB_QUEUES[0] == queues.INTERACTIVE  # taken first by the job worker


def test_a_message_carries_its_kinds_queue_and_time_limits(team, broker, settings):
    settings.JOB_TIME_LIMITS = {"default": (100, 110), "word_stats": (7, 9)}
    job = _job(team)
    [message] = _messages(broker, queues.INGEST)
    assert message["headers"]["id"] == job.celery_task_id
    assert message["headers"]["timelimit"] == [9, 7]  # Celery's order: hard, soft
    assert dispatch.time_limits("qa_answer") == (100, 110)  # the default for the others


def test_a_row_from_before_the_split_goes_to_its_kinds_queue(team, broker):
    job = _job(team, queue="llm")  # the old queue's name: nobody serves it any more
    assert not broker.llen("llm")
    assert [m["headers"]["id"] for m in _messages(broker, queues.INGEST)] == [job.celery_task_id]


def test_the_sweep_runs_on_the_control_queue_and_expires_with_its_interval(settings):
    from workers.celery import app

    assert app.amqp.router.route({}, "jobs.sweep")["queue"].name == queues.CONTROL
    sweep = settings.CELERY_BEAT_SCHEDULE["sweep-lost-jobs"]
    assert sweep["options"]["expires"] == sweep["schedule"] == settings.JOB_SWEEP_INTERVAL


def test_make_run_serves_every_queue_and_keeps_the_sweeper_apart():
    from apps.core.management.commands.serve import Command

    jobs, control, interactive = (
        " ".join(c) for c in Command._worker_commands({"concurrency": 2,
                                                       "interactive_concurrency": 1}))
    assert "-Q interactive,ingest,batch --pool prefork -c 2" in jobs and " -B" not in jobs
    assert "-Q control --pool solo -B" in control  # the scheduler lives with the sweeper
    assert "-Q interactive --pool prefork -c 1" in interactive
    assert len(Command._worker_commands({"concurrency": 2, "interactive_concurrency": 0})) == 2


# -- Per-team caps (no worker: the rows and the broker) --------------------------------------


def test_jobs_past_a_teams_cap_wait_on_the_row_and_go_out_as_slots_free(broker, settings):
    settings.JOB_TEAM_CAPS = {"word_stats": 2}
    settings.JOB_LOST_AFTER = timezone.timedelta(seconds=0)
    big, small = TeamFactory(), TeamFactory()
    batch = [_job(big) for _ in range(5)]
    other = _job(small)

    def sent():
        return {j.pk for j in Job.objects.filter(enqueued_at__isnull=False)}

    assert sent() == {batch[0].pk, batch[1].pk, other.pk}
    assert {j.celery_task_id for j in Job.objects.filter(pk__in=sent())} <= held_task_ids()
    assert broker.llen(queues.INGEST) == 3  # three messages, not six

    # The sweeper leaves the held ones alone (no message was lost: none was sent).
    report = services.sweep_lost_jobs()
    assert not (set(report.requeued_queued) & {j.pk for j in batch[2:]})
    assert sent() == {batch[0].pk, batch[1].pk, other.pk}

    # A job of the team ends: its oldest waiting job is sent, with the task id it was given.
    Job.objects.filter(pk=batch[0].pk).update(status=Status.SUCCEEDED)
    assert dispatch.release(big.pk, "word_stats") == [batch[2].pk]
    held = Job.objects.get(pk=batch[2].pk)
    assert held.celery_task_id in held_task_ids()
    assert dispatch.release(big.pk, "word_stats") == []  # no free slot left

    # An ending nobody released (a worker killed): the sweeper tops up.
    Job.objects.filter(pk__in=[batch[1].pk, batch[2].pk]).update(status=Status.FAILED)
    services.sweep_lost_jobs()
    assert sent() >= {batch[3].pk, batch[4].pk}


# -- Real worker processes --------------------------------------------------------------------


@pytest.mark.worker
def test_an_interactive_job_is_taken_before_batch_items_already_waiting(team, broker):
    worker = LiveWorker(env={"DEMO_JOB_STEP_DELAY": "0.05"}, concurrency=1).start()
    try:
        # 40 steps: the only child is busy for ~2 s. Taken from the interactive queue, which
        # a round-robin order would now put last.
        busy = _job(team, queue=queues.INTERACTIVE, text=LONG)
        wait_for(lambda: Job.objects.get(pk=busy.pk).status == Status.RUNNING, timeout=30,
                 message="the first job to start")
        batch = [_job(team, queue=queues.BATCH) for _ in range(3)]
        chat = _job(team, queue=queues.INTERACTIVE)
        wait_for(lambda: _all_done([busy, chat, *batch]), timeout=60, message="all jobs")
        started = dict(Job.objects.values_list("pk", "started_at"))
        assert all(started[chat.pk] < started[b.pk] for b in batch), worker.log
    finally:
        worker.stop()


@pytest.mark.worker
def test_a_teams_cap_holds_on_real_workers_and_every_item_finishes(broker, settings):
    settings.JOB_TEAM_CAPS = {"word_stats": 2}
    worker = LiveWorker(env={"DEMO_JOB_STEP_DELAY": "0.05", "JOB_TEAM_CAPS": "word_stats=2"},
                        concurrency=3).start()
    try:
        big, small = TeamFactory(), TeamFactory()
        batch = [_job(big) for _ in range(6)]
        others = [_job(small) for _ in range(2)]
        most_running = most_active = 0
        deadline = time.monotonic() + 90
        while not _all_done(batch + others) and time.monotonic() < deadline:
            jobs = Job.objects.filter(team=big)
            most_running = max(most_running, jobs.filter(status=Status.RUNNING).count())
            most_active = max(most_active, dispatch._active(big.pk, "word_stats").count())
            time.sleep(0.02)
        statuses = set(Job.objects.filter(pk__in=[j.pk for j in batch + others])
                       .values_list("status", flat=True))
        assert statuses == {Status.SUCCEEDED}, worker.log
        assert most_active <= 2 and 1 <= most_running <= 2
        # The other team did not wait for the whole batch.
        last_of_batch = max(Job.objects.filter(team=big).values_list("started_at", flat=True))
        assert all(Job.objects.get(pk=j.pk).started_at < last_of_batch for j in others)
    finally:
        worker.stop()


@pytest.mark.worker
def test_time_limits_end_or_kill_a_job_and_the_worker_keeps_serving(team, broker, settings):
    worker = LiveWorker(env={"DEMO_JOB_STEP_DELAY": "0.2"}, concurrency=1).start()
    try:
        settings.JOB_TIME_LIMITS = {"default": (None, None), "word_stats": (1, 30)}
        soft = _job(team, text=LONG)  # 40 steps of 0.2 s: 8 s
        wait_for(lambda: Job.objects.get(pk=soft.pk).is_finished, timeout=30, message="soft")
        soft.refresh_from_db()
        assert soft.status == Status.FAILED and soft.error_code == "time_limit"
        assert soft.error.startswith("The job took longer than 1 s, the limit for word stat")

        settings.JOB_TIME_LIMITS = {"default": (None, None), "word_stats": (None, 1.5)}
        hard = _job(team, text=LONG)
        wait_for(lambda: "Hard time limit (1.5s) exceeded" in worker.log, timeout=30,
                 message="the hard limit")
        hard.refresh_from_db()
        # The child was killed mid-job: the row still says running, with its heartbeat
        # stopped, for the sweeper to send it again.
        assert hard.status == Status.RUNNING and hard.progress_current < 40

        settings.JOB_TIME_LIMITS = {"default": (None, None)}
        after = _job(team, text="Still serving.")
        wait_for(lambda: Job.objects.get(pk=after.pk).is_finished, timeout=30, message="next")
        assert Job.objects.get(pk=after.pk).status == Status.SUCCEEDED, worker.log
        assert worker.alive

        # The sweeper sends it again (killed again: it is poison) until its attempts run out.
        settings.JOB_LOST_AFTER = timezone.timedelta(seconds=0)
        settings.JOB_MAX_ATTEMPTS = 2
        settings.JOB_TIME_LIMITS = {"default": (None, None), "word_stats": (None, 1.5)}
        assert hard.pk in services.sweep_lost_jobs().requeued_running
        wait_for(lambda: worker.log.count("Hard time limit (1.5s) exceeded") == 2, timeout=30,
                 message="the second kill")
        assert hard.pk in services.sweep_lost_jobs().failed
        hard.refresh_from_db()
        assert hard.status == Status.FAILED and hard.attempts == 2
        assert "died 2 times" in hard.error and worker.alive
    finally:
        worker.stop()


@pytest.mark.worker
def test_a_child_over_the_memory_cap_is_replaced_after_its_job(team, broker):
    worker = LiveWorker(env={"CELERY_WORKER_MAX_MEMORY_PER_CHILD": "1"}, concurrency=1).start()
    try:
        first, second = _job(team), None
        wait_for(lambda: Job.objects.get(pk=first.pk).is_finished, timeout=30, message="first")
        second = _job(team)
        wait_for(lambda: Job.objects.get(pk=second.pk).is_finished, timeout=30, message="2nd")
        first.refresh_from_db()
        second.refresh_from_db()
        assert first.status == second.status == Status.SUCCEEDED
        assert first.worker != second.worker  # host:pid of the child: a fresh one
    finally:
        worker.stop()


@pytest.mark.worker
def test_a_sweep_runs_while_every_job_worker_is_busy(team, broker, tmp_path):
    slow = {"DEMO_JOB_STEP_DELAY": "0.3"}
    jobs = LiveWorker(env=slow, concurrency=1).start()
    control = LiveWorker(queues=queues.CONTROL, pool="solo", concurrency=1,
                         beat_schedule=str(tmp_path / "schedule"),
                         env={"JOB_SWEEP_INTERVAL": "1", "JOB_LOST_AFTER_SECONDS": "30"})
    try:
        busy = _job(team, text=LONG)  # 12 s
        backlog = [_job(team, text=LONG) for _ in range(3)]
        wait_for(lambda: Job.objects.get(pk=busy.pk).status == Status.RUNNING, timeout=30,
                 message="the job worker to be busy")
        # A job whose message was lost an hour ago.
        lost = Job.objects.create(team=team, kind="word_stats", params={"text": TEXT},
                                  queue=queues.INGEST, celery_task_id=Job.new_task_id(),
                                  enqueued_at=timezone.now() - timezone.timedelta(hours=1))
        control.start()
        wait_for(lambda: Job.objects.get(pk=lost.pk).celery_task_id != lost.celery_task_id,
                 timeout=30, message="a sweep to send the lost job again")
        assert Job.objects.get(pk=busy.pk).status == Status.RUNNING  # still busy
        assert all(Job.objects.get(pk=j.pk).status == Status.QUEUED for j in backlog)
        assert "jobs.sweep" in control.log
    finally:
        control.stop()
        jobs.stop()
