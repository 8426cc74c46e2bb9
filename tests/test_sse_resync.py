"""Events are best effort, rows are truth: an answer's stream starts with the row's snapshot,
re-reads the row while it runs (text the browser missed is replaced by the row's; an answer
that ended while its events were lost ends the stream), ends for a finished message, and
follows the row alone while Redis is unreachable or restarting."""

from __future__ import annotations

import asyncio
import json
import random
import re
import threading
import time

import pytest
import redis
from asgiref.sync import async_to_sync
from django.db import connection
from django.test import AsyncClient
from django.urls import reverse

from apps import stack
from apps.chat.models import Conversation, Message, MessageStatus
from apps.core import sse
from workers import events

pytestmark = pytest.mark.django_db(transaction=True)

CANCELLED = getattr(MessageStatus, "CANCELLED", "cancelled")  # the status another change adds


@pytest.fixture(autouse=True)
def quick_checks(monkeypatch):
    monkeypatch.setattr(sse, "_process_slots", {})
    monkeypatch.setattr(sse, "ROW_CHECK_SECONDS", 0.3)
    monkeypatch.setattr(sse, "ROWS_ONLY_SECONDS", 3.0)


def _reply(team, status=MessageStatus.STREAMING, content="Hel", **fields) -> Message:
    conversation = Conversation.objects.create(team=team, title="Live")
    return Message.objects.create(conversation=conversation, role="assistant", status=status,
                                  content=content, **fields)


def _url(reply: Message) -> str:
    return reverse("chat:stream", kwargs={"team_slug": reply.conversation.team.slug,
                                          "pk": reply.conversation_id, "message_pk": reply.pk})


def _read(client: AsyncClient, url: str, within: float = 20.0) -> list[tuple[str, dict]]:
    """The whole stream (it must end by itself, within `within` seconds) as (event, data)."""

    async def read() -> str:
        response = await client.get(url)
        assert response.status_code == 200 and response["Content-Type"] == "text/event-stream"
        return b"".join([chunk async for chunk in response.streaming_content]).decode()

    async def bounded() -> str:
        return await asyncio.wait_for(read(), within)

    return _events(async_to_sync(bounded)())


def _events(body: str) -> list[tuple[str, dict]]:
    parsed = []
    for block in body.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines()
                      if ": " in line and not line.startswith(":"))
        if "event" in fields:
            parsed.append((fields["event"], json.loads(fields["data"])))
    return parsed


def _shown(stream: list[tuple[str, dict]]) -> str:
    """What static/js/chat.js shows from these events: a snapshot replaces, a token appends."""
    text = ""
    for kind, data in stream:
        if kind == "snapshot":
            text = data["text"]
        elif kind == "token":
            text += data["text"]
        elif kind == "retry":
            text = ""
    return text


def _when_subscribed(url: str, name: str, then) -> threading.Thread:
    """Run `then` in a thread once the stream has subscribed to `name` (and read its row)."""

    def wait_then():
        client = redis.Redis.from_url(events.redis_py_url(url))
        deadline = time.monotonic() + 10
        while client.pubsub_numsub(name)[0][1] == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        client.close()
        time.sleep(0.2)  # past the snapshot's read of the row
        then()

    return _thread(wait_then)


def _thread(work) -> threading.Thread:
    def run():
        try:
            work()
        finally:
            connection.close()  # this thread's database session: the test database is dropped

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.fixture
def async_client_for(client):
    def login(user) -> AsyncClient:
        client.force_login(user)
        signed_in = AsyncClient()
        signed_in.cookies = client.cookies
        return signed_in

    return login


# -- The rules (pure) --------------------------------------------------------------------------


def test_text_missed_before_subscribing_is_taken_from_the_row_and_tokens_follow_it():
    shown = sse.LiveText("Hel")  # the snapshot; "lo" was published before the subscription
    for token in (" wor", "ld"):
        shown.add(token)
    assert shown.resync("Hel") is None  # the row lags: no news
    assert shown.resync("Hello") == "Hello wor" + "ld"  # saved before " wor" arrived
    assert shown.resync("Hello wor") == "Hello world"  # saved between the two tokens
    assert shown.resync("Hello world") == "Hello world"


def test_the_row_leading_is_news_only_when_the_tokens_never_come():
    shown = sse.LiveText("Hel")
    assert shown.resync("Hello") is None  # tokens on their way
    shown.add("lo")
    assert shown.resync("Hello, you") is None  # arrived; the row leads again
    assert shown.resync("Hello, you there") == "Hello, you there"  # ", you" never came
    assert sse.LiveText("abc").resync("xyz") == "xyz"  # started over
    assert sse.LiveText("abc").resync("abcd", live=False) == "abcd"  # no tokens come
    assert sse.LiveText("abc").resync("abc", live=False) is None


PROSE = """Teams upload long documents and ask questions about them in a chat; the engine
answers with methods that reach far past the model's context window, and shows where each
answer came from. Teams also commission long texts that are planned, then written section
by section. The row is the source of truth for status, progress, result and error: the
broker may lose a message, the row never does. The answer is saved every few seconds while
it is written, and each token is published as it comes; a page that opens, or reopens,
in the middle of an answer reads the saved text and then the tokens. The text the page
missed between the save and its subscription comes back with the next save of the row."""


def test_the_shown_text_converges_on_the_answer_within_two_row_checks():
    """Random interleavings of an answer's tokens (words of prose, some repeated), a last save
    before the page subscribed, and two later saves seen at the row checks: the page shows
    exactly the answer so far after the second check, bar a rare ambiguous repetition (which
    the rendered message replaces at the end)."""
    rng = random.Random(7)
    words = re.findall(r"\s*\S+", PROSE)
    wrong, trials = 0, 3000
    for _ in range(trials):
        start = rng.randrange(len(words) - 40)
        tokens = words[start:start + rng.randint(10, 40)]
        subscribed = rng.randint(1, len(tokens) - 1)
        saved = rng.randint(0, subscribed)  # the snapshot: the last save before subscribing
        shown, received = sse.LiveText("".join(tokens[:saved])), subscribed
        for _check in range(2):
            upto = rng.randint(received, len(tokens))
            for token in tokens[received:upto]:
                shown.add(token)
            received, saved = upto, rng.randint(max(saved, subscribed), upto)
            text = shown.resync("".join(tokens[:saved]))
            shown = sse.LiveText(text) if text is not None else shown
        wrong += shown.text != "".join(tokens[:received])
    assert wrong / trials < 0.005, wrong


# -- The stream --------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [MessageStatus.DONE, MessageStatus.FAILED, CANCELLED])
def test_a_finished_message_sends_its_row_and_ends(team, member, async_client_for, status):
    reply = _reply(team, status=status, content="The **final** answer.")
    started = time.monotonic()
    stream = _read(async_client_for(member), _url(reply), within=5)
    assert stream == [("snapshot", {"text": "The **final** answer.", "status": status}),
                      ("done", {"status": status})]
    assert time.monotonic() - started < 2  # no waiting on events that will never come


def test_a_streaming_message_sends_its_snapshot_then_tokens(team, member, async_client_for,
                                                            settings):
    reply = _reply(team)
    name = events.channel("message", reply.pk)

    def speak():
        for delta in ("lo", " world"):
            events.publish(name, {"type": "token", "text": delta}, settings.REDIS_URL)
        events.publish(name, {"type": "done"}, settings.REDIS_URL)

    thread = _when_subscribed(settings.REDIS_URL, name, speak)
    stream = _read(async_client_for(member), _url(reply))
    thread.join()
    assert stream[0] == ("snapshot", {"text": "Hel", "status": MessageStatus.STREAMING})
    assert [k for k, _ in stream] == ["snapshot", "token", "token", "done"]
    assert _shown(stream) == "Hello world"


def test_tokens_missed_before_the_stream_are_resynchronised_from_the_row(
        team, member, async_client_for, settings):
    """The answer saves its text every few seconds: a page opened (or reconnected) mid-answer
    gets the last save, and the tokens published since were never sent to it. The next
    saved row fills the hole; the browser ends up with exactly the row's text."""
    reply = _reply(team, content="Hel")
    name = events.channel("message", reply.pk)

    def speak():  # "lo" was published before the stream subscribed: it never gets it
        events.publish(name, {"type": "token", "text": " wor"}, settings.REDIS_URL)
        Message.objects.filter(pk=reply.pk).update(content="Hello wor")  # a partial save
        time.sleep(1.0)  # three row checks
        events.publish(name, {"type": "token", "text": "ld"}, settings.REDIS_URL)
        time.sleep(0.5)
        Message.objects.filter(pk=reply.pk).update(content="Hello world")
        time.sleep(1.0)  # the answer's "done" is lost; the row says it
        Message.objects.filter(pk=reply.pk).update(status=MessageStatus.DONE)

    thread = _when_subscribed(settings.REDIS_URL, name, speak)
    stream = _read(async_client_for(member), _url(reply))
    thread.join()
    resync = stream.index(("snapshot", {"text": "Hello wor", "status": "streaming"}))
    assert _shown(stream[:resync]) == "Hel wor"  # the hole, until the row was read
    assert _shown(stream[:-2]) == "Hello world"
    assert stream[-2:] == [("snapshot", {"text": "Hello world", "status": "done"}),
                           ("done", {"status": "done"})]


@pytest.mark.parametrize("ending", [MessageStatus.FAILED, CANCELLED])
def test_a_job_that_ended_without_its_event_ends_the_stream(team, member, async_client_for,
                                                            settings, ending):
    reply = _reply(team)
    name = events.channel("message", reply.pk)
    thread = _when_subscribed(settings.REDIS_URL, name, lambda: Message.objects.filter(
        pk=reply.pk).update(status=ending, error="Stopped"))
    started = time.monotonic()
    stream = _read(async_client_for(member), _url(reply), within=10)
    thread.join()
    assert stream[-1] == ("done", {"status": ending})
    assert time.monotonic() - started < 5  # a row check or two, not the 15 s ping


def test_a_reconnection_starts_from_the_row_not_from_the_tokens(team, member, async_client_for,
                                                               settings):
    """The browser's EventSource reconnects after a blip: the first event replaces what the
    page shows with the row's text, so no token is shown twice."""
    reply = _reply(team, content="")
    name = events.channel("message", reply.pk)

    def speak_then_save():
        for delta in ("One", " two"):
            events.publish(name, {"type": "token", "text": delta}, settings.REDIS_URL)
        Message.objects.filter(pk=reply.pk).update(content="One two")
        events.publish(name, {"type": "error", "error": "cut"}, settings.REDIS_URL)  # ends it

    thread = _when_subscribed(settings.REDIS_URL, name, speak_then_save)
    client = async_client_for(member)
    first = _read(client, _url(reply))
    thread.join()
    assert _shown(first) == "One two"
    thread = _when_subscribed(settings.REDIS_URL, name, lambda: Message.objects.filter(
        pk=reply.pk).update(status=MessageStatus.DONE))  # then it ends, and the stream
    again = _read(client, _url(reply), within=10)
    thread.join()
    assert again[0] == ("snapshot", {"text": "One two", "status": "streaming"})
    assert _shown(again) == "One two"  # replaced, not appended: "One twoOne two" never


def test_without_redis_the_stream_follows_the_row(team, member, async_client_for, settings,
                                                 tmp_path):
    """Redis unreachable: the stream still opens (per-person slots uncounted), sends the row,
    its new saves, and the end."""
    reply = _reply(team)
    settings.REDIS_URL = f"redis+socket://{tmp_path}/no-redis.sock?virtual_host=0"

    def answer():
        time.sleep(0.5)
        Message.objects.filter(pk=reply.pk).update(content="Hello")
        time.sleep(0.7)
        Message.objects.filter(pk=reply.pk).update(content="Hello world", status="done")

    thread = _thread(answer)
    stream = _read(async_client_for(member), _url(reply))
    thread.join()
    # The row as the stream found it on opening, then each save after it, in order: under load
    # the stream can open after the first save (a whole-suite run saw "Hello" first).
    snapshots = [d["text"] for k, d in stream if k == "snapshot"]
    saves = ["Hel", "Hello", "Hello world"]
    assert len(snapshots) >= 2 and snapshots == saves[saves.index(snapshots[0]):], snapshots
    assert stream[-1] == ("done", {"status": "done"})


def test_a_redis_restart_mid_stream_falls_back_to_the_row_then_to_live_events(
        team, member, async_client_for, settings, tmp_path):
    """A real Redis of the test's own, stopped under a live stream: the stream goes on from
    the row (no error, no spinner); once Redis answers again it ends, and the browser's
    reconnection gets the row's snapshot and live tokens again."""
    paths = stack.redis_paths(tmp_path / "redis")
    stack.start_redis(paths, persistent=False)
    settings.REDIS_URL = stack.redis_url_for(paths.socket)
    reply = _reply(team)
    name = events.channel("message", reply.pk)

    def restart():
        events.publish(name, {"type": "token", "text": "lo"}, settings.REDIS_URL)
        time.sleep(0.3)
        stack.stop_redis(paths)
        time.sleep(0.5)
        Message.objects.filter(pk=reply.pk).update(content="Hello wo")  # saved meanwhile
        time.sleep(0.7)
        stack.start_redis(paths, persistent=False)

    def answer():
        events.publish(name, {"type": "token", "text": "rld"}, settings.REDIS_URL)
        Message.objects.filter(pk=reply.pk).update(content="Hello world", status="done")
        events.publish(name, {"type": "done"}, settings.REDIS_URL)

    client = async_client_for(member)
    thread = _when_subscribed(settings.REDIS_URL, name, restart)
    try:
        first = _read(client, _url(reply))
        thread.join()
        thread = _when_subscribed(settings.REDIS_URL, name, answer)
        again = _read(client, _url(reply))
    finally:
        thread.join()  # it restarts the server: stop it after
        stack.stop_redis(paths)
    assert first[:2] == [("snapshot", {"text": "Hel", "status": "streaming"}),
                         ("token", {"text": "lo"})]
    assert first[-1] == ("snapshot", {"text": "Hello wo", "status": "streaming"})  # no "done"
    assert again == [("snapshot", {"text": "Hello wo", "status": "streaming"}),
                     ("token", {"text": "rld"}), ("done", {"type": "done"})]
    assert _shown(again) == "Hello world"


def test_a_writing_stream_takes_missed_text_and_its_end_from_the_rows(team, member,
                                                                      async_client_for, settings):
    """The same for a writing project: the section's saved text fills what the page missed,
    and a job that ended without its "done" event (cancelled) ends the stream."""
    from apps.jobs.models import Status
    from apps.writing.models import ProjectStatus, Section, SectionStatus, WritingProject
    from tests.factories import JobFactory

    job = JobFactory(team=team, kind="writing_write", status=Status.RUNNING)
    project = WritingProject.objects.create(team=team, title="Live", instruction="x",
                                            target_words=300, status=ProjectStatus.WRITING,
                                            job=job)
    section = Section.objects.create(project=project, position=2, point="b", target_words=100,
                                     status=SectionStatus.WRITING, text="Once")
    name = events.channel("writing", project.pk)

    def write():  # " upon" was published before the page subscribed
        events.publish(name, {"type": "token", "section": 2, "text": " a"}, settings.REDIS_URL)
        Section.objects.filter(pk=section.pk).update(text="Once upon a")
        time.sleep(1.0)
        type(job).objects.filter(pk=job.pk).update(status=Status.CANCELLED)

    thread = _when_subscribed(settings.REDIS_URL, name, write)
    url = reverse("writing:stream", kwargs={"team_slug": team.slug, "pk": project.pk})
    stream = _read(async_client_for(member), url, within=10)
    thread.join()
    assert stream[0] == ("snapshot", {"section": 2, "text": "Once", "status": "writing"})
    assert ("snapshot", {"section": 2, "text": "Once upon a", "status": "writing"}) in stream
    assert stream[-1] == ("done", {"status": "writing"})
