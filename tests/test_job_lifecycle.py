"""One lifecycle for every job: every registered kind through every ending.

The job layer (apps/jobs/services.py) moves the row and calls the kind's hooks; the hooks
move the app's own rows (a chat message, a document, a writing project, a batch item and
its batch). Here each kind's *runner* is replaced by a script that chooses the ending (it
succeeds with a result of the real runner's shape, raises, is cancelled, hits a transient
error, is superseded by the sweeper, dies, overruns its time limit); the rows, the job
layer and the hooks are the real ones. The runners themselves are tested with the real
model in their apps' tests (test_chat, test_writing, tests/api, test_documents).
"""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest
from billiard.exceptions import SoftTimeLimitExceeded
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from apps.api.models import Batch, BatchItem, BatchStatus, ItemStatus
from apps.chat import services as chat
from apps.chat.models import Message, MessageStatus
from apps.documents import services as documents
from apps.documents.models import DocStatus, Document
from apps.jobs import kinds, services
from apps.jobs.models import Job, Status
from apps.writing import services as writing
from apps.writing.models import ProjectStatus, Section, SectionStatus, WritingProject

pytestmark = pytest.mark.django_db

# What an app row may never be once its job has ended.
LIVE = {"queued", "pending", "streaming", "processing", "running", "planning", "writing"}
ENDINGS = ["success", "failure", "cancel_queued", "cancel_running", "transient_then_success",
           "superseded", "attempts_exhausted", "poison", "time_limit"]


class Transient(Exception):
    transient = True


class WorkerDied(BaseException):  # noqa: N818 - not an error the job sees: the process is gone
    """Escapes run() as a SIGKILL would: the row stays running, the heartbeat stops."""


# -- Each kind's job with its rows, and what its rows say ------------------------------------


def _document(team, status=DocStatus.READY, text="The keeper is Oskar Brandt.") -> Document:
    return Document.objects.create(team=team, title="Memo", original_name="memo.txt",
                                   sha256=f"{abs(hash((text, status))):064d}"[:64],
                                   file="teams/memo.txt", kind="text", status=status, text=text)


def _batch(team, webhook=False) -> Batch:
    return Batch.objects.create(team=team, kind="compress", total=1,
                                webhook_url="https://hooks.example.com/x" if webhook else "",
                                webhook_secret="s" if webhook else "")


def make_job(kind: str, team, user) -> Job:
    """A job of `kind` as the app makes it (with its rows), queued."""
    if kind == "qa_answer":
        conversation = chat.start_conversation(team, user, [_document(team)])
        return chat.ask(conversation, user, "Who is the keeper?", "full").job
    if kind == "ingest_document":
        document = _document(team, status=DocStatus.QUEUED, text="")
        documents.reingest(document, user)
        return Document.objects.get(pk=document.pk).job
    if kind.startswith("writing_"):
        project = writing.create_project(team, user, instruction="Write a guide to tea.",
                                         target_words=400)
        if kind == "writing_plan":
            return writing.start_plan(project, user).job
        Section.objects.create(project=project, position=1, point="Green tea", target_words=200)
        if kind == "writing_write":
            return writing.start_write(project, user).job
        return writing.start_regenerate(project, project.sections.get(), user).job
    if kind == "batch_item":
        batch = _batch(team, webhook=True)
        item = BatchItem.objects.create(batch=batch, index=0, kind="compress",
                                        input={"text": "Some text.", "ratio": 2})
        item.job = services.create_job(team, "batch_item", {"item_id": item.pk}, user=user)
        item.save(update_fields=["job"])
        return item.job
    if kind == "batch_webhook":
        batch = _batch(team, webhook=True)
        batch.webhook_job = services.create_job(team, kind, {"batch_id": batch.pk})
        batch.save(update_fields=["webhook_job"])
        return batch.webhook_job
    return services.create_job(team, kind, {"text": "a b c", "document_id": 0}, user=user)


def rows(job: Job) -> dict[str, str]:
    """The statuses of the app rows that follow `job` (none for kinds without rows)."""
    found = {}
    for message in Message.objects.filter(job=job):
        found["message"] = message.status
    for document in Document.objects.filter(job=job):
        found["document"] = document.status
    for project in WritingProject.objects.filter(job=job):
        found["project"] = project.status
        for section in project.sections.filter(status=SectionStatus.WRITING):  # "pending" is
            found[f"section {section.position}"] = section.status  # "not written": at rest
    for item in BatchItem.objects.filter(job=job).select_related("batch"):
        found["item"], found["batch"] = item.status, item.batch.status
    return found


RESULTS = {  # a success of each kind's runner, in the shape its hooks read
    "qa_answer": lambda job: {
        "message_id": job.params["message_id"], "strategy": "full", "citations": [],
        "grounded": True, "abstained": False,
        "answer": {"content": "Oskar Brandt.", "reason": "short", "trace": [],
                   "grounding": {}, "tokens_in": 10, "tokens_out": 3}},
    "ingest_document": lambda job: {"document_id": job.params["document_id"], "pages": 1,
                                    "words": 5, "tokens": 7, "chunks": 1},
    "batch_item": lambda job: {"batch_id": 0, "index": 0, "result": {"text": "Short."}},
}


def script(ending: str, calls: list):
    """A runner that ends as `ending` says (`calls` records each delivery)."""

    def runner(job, progress):
        calls.append(job.celery_task_id)
        progress(1, 2, "working")
        if ending == "failure":
            raise RuntimeError("the work broke")
        if ending == "cancel_running":
            services.cancel(job)
            progress(2, 2, "next step")  # raises Cancelled
        if ending == "transient_then_success" and len(calls) == 1 or \
                ending == "attempts_exhausted":
            raise Transient("the model server is down")
        if ending == "superseded" and len(calls) == 1:
            # The sweeper takes this live job for a lost one (its heartbeat went stale) and
            # sends it again while this delivery still runs and then returns.
            Job.objects.filter(pk=job.pk).update(
                heartbeat_at=timezone.now() - timezone.timedelta(hours=1))
            assert services.sweep_lost_jobs(held=set()).requeued_running == [job.pk]
            assert not {"failed", "done", "succeeded", "ready"} & set(rows(job).values())
        if ending == "poison":
            raise WorkerDied()
        if ending == "time_limit":
            raise SoftTimeLimitExceeded()
        return RESULTS.get(job.kind, lambda job: {"ok": True})(job)

    return runner


def deliver(job: Job) -> str:
    """Run the job's current message, as a worker would."""
    job.refresh_from_db()
    return services.run(job.pk, job.celery_task_id)


@pytest.fixture
def scripted(monkeypatch):
    """Replace a kind's runner (its hooks stay) for the test."""

    def use(kind: str, runner) -> None:
        monkeypatch.setitem(kinds._KINDS, kind,
                            dataclasses.replace(kinds.get_kind(kind), runner=runner))

    return use


ALL_KINDS = sorted(k.name for k in kinds.all_kinds())


def test_every_kind_is_covered():
    expected = {"word_stats", "llm_check", "qa_answer", "ingest_document", "writing_plan",
                "writing_write", "writing_section", "batch_item", "batch_webhook"}
    assert expected <= set(ALL_KINDS)


@pytest.mark.parametrize("ending", ENDINGS)
@pytest.mark.parametrize("kind", ALL_KINDS)
def test_every_kind_through_every_ending(kind, ending, team, member, scripted, settings):
    settings.JOB_MAX_ATTEMPTS = 3
    settings.JOB_LOST_AFTER = timezone.timedelta(seconds=60)
    calls: list[str] = []
    scripted(kind, script(ending, calls))
    job = make_job(kind, team, member)
    waiting = rows(job)
    assert not waiting or set(waiting.values()) & {"queued", "pending", "planning", "writing"}

    if ending == "cancel_queued":
        services.cancel(job)
        assert deliver(job).startswith("skipped")
    elif ending == "transient_then_success":
        assert deliver(job) == "retrying"
        job.refresh_from_db()
        assert job.status == Status.QUEUED and "the model server is down" in job.message
        assert not set(rows(job).values()) - LIVE - {"planned"}  # waiting again, not ended
        assert deliver(job) == "succeeded"
    elif ending == "superseded":
        assert deliver(job) == "superseded"  # the old delivery's result is dropped
        job.refresh_from_db()
        assert job.status == Status.QUEUED and job.attempts == 1
        assert deliver(job) == "succeeded"
    elif ending == "attempts_exhausted":
        outcomes = [deliver(job) for _ in range(3)]
        assert outcomes == ["retrying", "retrying", "failed after retries"]
    elif ending == "poison":
        for attempt in range(1, 4):
            with pytest.raises(WorkerDied):
                deliver(job)
            Job.objects.filter(pk=job.pk).update(
                heartbeat_at=timezone.now() - timezone.timedelta(hours=1))
            report = services.sweep_lost_jobs(held=set())
            assert (report.failed if attempt == 3 else report.requeued_running) == [job.pk]
    else:
        deliver(job)

    job.refresh_from_db()
    ended = rows(job)
    assert not set(ended.values()) & LIVE, (kind, ending, ended)
    assert job.is_finished and not set(ended.values()) & {"queued"}
    expected = {"success": Status.SUCCEEDED, "transient_then_success": Status.SUCCEEDED,
                "superseded": Status.SUCCEEDED, "cancel_queued": Status.CANCELLED,
                "cancel_running": Status.CANCELLED}.get(ending, Status.FAILED)
    assert job.status == expected, job.error
    _check_ending(kind, ending, job, ended)


def _check_ending(kind: str, ending: str, job: Job, ended: dict) -> None:
    """What each app's rows say for each ending."""
    if job.status == Status.FAILED:
        reason = {"failure": "RuntimeError: the work broke",
                  "attempts_exhausted": "Gave up after 3 attempts",
                  "poison": "The worker died 3 times on this job",
                  "time_limit": "took longer than"}[ending]
        assert reason in job.error
    if kind == "qa_answer":
        message = Message.objects.get(job=job)
        if job.status == Status.SUCCEEDED:
            assert message.status == MessageStatus.DONE and message.content == "Oskar Brandt."
        elif job.status == Status.CANCELLED:
            assert message.status == MessageStatus.CANCELLED and message.can_retry
            assert not message.error and not message.content  # not "failed: Cancelled"
        else:
            assert message.status == MessageStatus.FAILED and message.can_retry
            assert job.error in message.error
    if kind == "ingest_document":
        document = Document.objects.get(job=job)
        want = {Status.SUCCEEDED: DocStatus.READY}.get(job.status, DocStatus.FAILED)
        assert document.status == want
        if job.status == Status.CANCELLED:
            assert document.error_code == "cancelled"
        if job.status == Status.FAILED:
            assert document.error == job.error and document.error_code
    if kind.startswith("writing_"):
        project = WritingProject.objects.get(job=job)
        assert not project.is_busy
        if job.status == Status.FAILED:
            assert project.status == ProjectStatus.FAILED and job.error in project.error
        elif job.status == Status.CANCELLED:
            assert project.status in (ProjectStatus.PLANNED, ProjectStatus.DRAFT)
        else:
            assert project.status in (ProjectStatus.PLANNED, ProjectStatus.DONE)
        assert not project.sections.filter(status=SectionStatus.WRITING).exists()
    if kind == "batch_item":
        item = BatchItem.objects.select_related("batch").get(job=job)
        assert item.status == {Status.SUCCEEDED: ItemStatus.SUCCEEDED,
                               Status.CANCELLED: ItemStatus.CANCELLED}.get(job.status,
                                                                           ItemStatus.FAILED)
        assert item.batch.is_finished and item.batch.done == 1
        # The batch ended, so its webhook is on its way.
        assert item.batch.webhook_job.kind == "batch_webhook"
        if job.status == Status.CANCELLED:
            assert item.batch.status == BatchStatus.CANCELLED or item.batch.cancelled == 1


# -- Hooks are called once, by the owner only ------------------------------------------------


def test_a_superseded_worker_calls_no_hook(team, member, scripted, monkeypatch):
    calls: list[str] = []
    scripted("qa_answer", script("superseded", calls))
    seen = []

    def counting(name, hook):
        def call(*args):
            seen.append(name)
            hook(*args)
        return call

    hooks = kinds.get_kind("qa_answer").hooks
    counted = kinds.Hooks(**{name: counting(name, hook)
                             for name, hook in dataclasses.asdict(hooks).items()})
    monkeypatch.setitem(kinds._KINDS, "qa_answer",
                        dataclasses.replace(kinds.get_kind("qa_answer"), hooks=counted))
    job = make_job("qa_answer", team, member)
    assert deliver(job) == "superseded"
    # The sweeper's requeue told the message; the old worker's success did not.
    assert seen == ["on_start", "on_requeue"]
    assert Message.objects.get(job=job).status == MessageStatus.PENDING
    assert deliver(job) == "succeeded"
    assert seen == ["on_start", "on_requeue", "on_start", "on_success"]


def test_a_hook_that_breaks_fails_the_job_instead_of_leaving_it_running(team, member,
                                                                       scripted, monkeypatch):
    scripted("qa_answer", script("success", []))

    def broken(job, result):
        raise RuntimeError("cannot save")

    hooks = dataclasses.replace(kinds.get_kind("qa_answer").hooks, on_success=broken)
    monkeypatch.setitem(kinds._KINDS, "qa_answer",
                        dataclasses.replace(kinds.get_kind("qa_answer"), hooks=hooks))
    job = make_job("qa_answer", team, member)
    assert deliver(job) == "failed"
    job.refresh_from_db()
    assert job.status == Status.FAILED and "cannot save" in job.error
    assert Message.objects.get(job=job).status == MessageStatus.FAILED


# -- Cancel, retry, the pages ----------------------------------------------------------------


def test_a_cancelled_answer_shows_cancelled_with_a_retry_that_answers(client, team, member,
                                                                     scripted):
    scripted("qa_answer", script("success", []))
    job = make_job("qa_answer", team, member)
    reply = Message.objects.get(job=job)
    services.cancel(job)
    reply.refresh_from_db()
    assert reply.status == MessageStatus.CANCELLED
    client.force_login(member)
    page_url = reverse("chat:detail", kwargs={"team_slug": team.slug,
                                              "pk": reply.conversation_id})
    page = client.get(page_url).content.decode()
    assert 'data-testid="answer-cancelled"' in page and ">Cancelled<" in page
    assert ">Retry</button>" in page and "failed" not in page.split("answer-cancelled")[1][:80]
    assert "data-stream" not in page  # no stream left open for it
    client.post(reverse("chat:retry", kwargs={"team_slug": team.slug,
                                              "pk": reply.conversation_id,
                                              "message_pk": reply.pk}))
    reply.refresh_from_db()
    job.refresh_from_db()
    assert reply.status == MessageStatus.PENDING and job.status == Status.QUEUED
    assert job.attempts == 0  # a user's retry counts afresh
    assert deliver(job) == "succeeded"
    reply.refresh_from_db()
    assert reply.status == MessageStatus.DONE


def test_a_user_retry_resets_a_failed_answer(team, member, scripted):
    scripted("qa_answer", script("failure", []))
    job = make_job("qa_answer", team, member)
    deliver(job)
    reply = Message.objects.get(job=job)
    assert reply.status == MessageStatus.FAILED and reply.error
    chat.retry(reply)
    reply.refresh_from_db()
    assert reply.status == MessageStatus.PENDING and not reply.error and not reply.content


def test_cancelling_a_queued_batch_finishes_it_and_creates_its_webhook(team, member):
    from apps.api.services import cancel_batch

    batch = Batch.objects.create(team=team, kind="compress", total=3,
                                 webhook_url="https://hooks.example.com/x", webhook_secret="s")
    for index in range(3):
        item = BatchItem.objects.create(batch=batch, index=index, kind="compress",
                                        input={"text": "Text.", "ratio": 2})
        item.job = services.create_job(team, "batch_item", {"item_id": item.pk})
        item.save(update_fields=["job"])
    batch = cancel_batch(batch)
    assert batch.status == BatchStatus.CANCELLED and batch.cancelled == 3
    assert set(batch.items.values_list("status", flat=True)) == {ItemStatus.CANCELLED}
    assert batch.webhook_job.kind == "batch_webhook" and batch.webhook_job.status == "queued"


def test_an_ingest_cancelled_after_an_earlier_ingest_keeps_the_document_ready(team, member):
    document = _document(team)
    Document.objects.filter(pk=document.pk).update(ingested_at=timezone.now(), chunk_count=1)
    documents.reingest(document, member)
    document.refresh_from_db()
    assert document.status == DocStatus.QUEUED
    services.cancel(document.job)
    document.refresh_from_db()
    assert document.status == DocStatus.READY  # its earlier index is still there


def test_a_cancel_asked_of_a_job_whose_worker_died_ends_it_cancelled(team, member, scripted):
    scripted("qa_answer", script("poison", []))
    job = make_job("qa_answer", team, member)
    with pytest.raises(WorkerDied):
        deliver(job)
    services.cancel(job)  # running: asks its (dead) worker to stop
    Job.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - timezone.timedelta(hours=1))
    assert services.sweep_lost_jobs(held=set()).cancelled == [job.pk]
    assert Message.objects.get(job=job).status == MessageStatus.CANCELLED


# -- The heartbeat survives a failed write ---------------------------------------------------


@pytest.mark.django_db(transaction=True)  # the heartbeat thread has its own connection
def test_the_heartbeat_survives_its_connection_being_killed(team, member):
    job = services.create_job(team, "word_stats", {"text": "a b"}, user=member)
    job = services.claim(job.pk, job.celery_task_id)
    pids: list[int] = []
    beat = services.Heartbeat(job, interval=0.05)
    original = beat.beat

    def remembering() -> None:  # note which backend the heartbeat thread talks to
        original()
        if connection.connection is not None and not pids:
            pids.append(connection.connection.info.backend_pid)

    beat.beat = remembering
    with beat:
        _wait(lambda: pids and beat.beats >= 2, "first beats")
        with connection.cursor() as cursor:  # a real database error under the heartbeat
            cursor.execute("SELECT pg_terminate_backend(%s)", [pids[0]])
        _wait(lambda: beat.failures >= 1, "the failed beat")
        after = beat.beats
        _wait(lambda: beat.beats >= after + 2, "beats after the failure")
        stamp = Job.objects.get(pk=job.pk).heartbeat_at
        _wait(lambda: Job.objects.get(pk=job.pk).heartbeat_at > stamp, "a newer heartbeat")
    assert beat.failures == 1


def _wait(condition, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_time_limit_reason_names_the_limit_and_the_kind(team, member, scripted, settings):
    settings.JOB_TIME_LIMITS = {**settings.JOB_TIME_LIMITS, "word_stats": (42, 50)}
    scripted("word_stats", script("time_limit", []))
    job = make_job("word_stats", team, member)
    assert deliver(job) == "failed: time limit"
    job.refresh_from_db()
    assert job.error == ("The job took longer than 42 s, the limit for word statistics "
                         "(JOB_TIME_LIMITS)") and job.error_code == "time_limit"


def test_threads_are_not_left_running():
    assert not [t for t in threading.enumerate() if t.name.startswith("heartbeat-")]


def test_the_backend_retries_only_briefly_within_one_call():
    """In-call retries ride out a blip and stop at their time budget, whatever the attempt
    count; longer outages are the job's (JOB_MAX_ATTEMPTS, counted on the row)."""
    import asyncio

    from workers.llm.errors import BackendUnavailable
    from workers.llm.retrying import retry_async

    tries = []

    async def down():
        tries.append(time.monotonic())
        raise BackendUnavailable("connection refused")

    started = time.monotonic()
    with pytest.raises(BackendUnavailable):
        asyncio.run(retry_async(down, attempts=1000, initial_wait=0.05, max_wait=0.1,
                                budget=0.5))
    assert time.monotonic() - started < 2 and 2 <= len(tries) < 20
