"""Publishing live events: one pooled client per process (not a connection per token), and
a publish that fails never fails the job that publishes."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
import time

import pytest
import redis
from django.conf import settings

from apps import stack
from workers import events


@pytest.fixture
def connects(monkeypatch):
    """How many connections the process's publisher opened (its pool's make_connection)."""
    made = []
    real = redis.ConnectionPool.make_connection

    def counting(pool):
        made.append(pool)
        return real(pool)

    monkeypatch.setattr(redis.ConnectionPool, "make_connection", counting)
    monkeypatch.setattr(events, "_publishers", {})
    monkeypatch.setattr(events, "_outages", {})
    return made


def test_a_streamed_answer_publishes_through_one_pooled_connection(connects):
    url = settings.REDIS_URL
    listener = redis.Redis.from_url(events.redis_py_url(url)).pubsub()
    listener.subscribe("scriptorium:test:pooled")
    listener.get_message(timeout=5)  # the subscription's confirmation

    for n in range(200):  # one answer's tokens, from one thread
        assert events.publish("scriptorium:test:pooled", {"type": "token", "text": str(n)}, url)
    publisher = events._publishers[(os.getpid(), url)].connection_pool
    assert connects.count(publisher) == 1

    threads = [threading.Thread(target=lambda: [events.publish("scriptorium:test:pooled",
                                                               {"type": "ping"}, url)
                                                for _ in range(50)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert connects.count(publisher) <= 4  # one per thread publishing at the same instant

    received = []
    while (message := listener.get_message(timeout=2)) is not None:
        received.append(json.loads(message["data"]))
    listener.close()
    assert [e["text"] for e in received if e["type"] == "token"] == [str(n) for n in range(200)]
    assert sum(e["type"] == "ping" for e in received) == 200


def test_a_failed_publish_is_logged_and_never_raises(connects, tmp_path, caplog):
    down = f"redis+socket://{tmp_path}/no-redis.sock?virtual_host=0"
    with caplog.at_level(logging.WARNING):
        assert events.publish("scriptorium:test:down", {"type": "token", "text": "a"}, down) \
            is False
    assert "not sent" in caplog.text
    tried = len(connects)
    # Within the back-off the next events are dropped at once, not each tried again.
    assert events.publish("scriptorium:test:down", {"type": "token", "text": "b"}, down) is False
    assert len(connects) == tried


@pytest.fixture
def own_redis(tmp_path, monkeypatch):
    """A real Redis server of this test's own (the embedded one's binary, on a unix socket),
    that the test stops, restarts or freezes; and a publisher state of its own."""
    monkeypatch.setattr(events, "_publishers", {})
    monkeypatch.setattr(events, "_outages", {})
    paths = stack.redis_paths(tmp_path / "redis")
    stack.start_redis(paths, persistent=False)
    yield paths
    if paths.pidfile.exists():  # never leave it frozen or running
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(paths.pidfile.read_text()), signal.SIGCONT)
    stack.stop_redis(paths)


def _listen(paths, name: str):
    listener = redis.Redis(unix_socket_path=str(paths.socket)).pubsub()
    listener.subscribe(name)
    listener.get_message(timeout=5)  # the subscription's confirmation
    return listener


def _received(listener) -> list[dict]:
    got = []
    while (message := listener.get_message(timeout=1)) is not None:
        got.append(json.loads(message["data"]))
    listener.close()
    return got


def test_a_redis_restart_between_two_tokens_costs_no_event(own_redis):
    """The pooled connection dies with the server; the next publish reconnects at once."""
    url = stack.redis_url_for(own_redis.socket)
    listener = _listen(own_redis, "scriptorium:test:restart")
    assert events.publish("scriptorium:test:restart", {"type": "token", "text": "a"}, url)
    assert _received(listener) == [{"type": "token", "text": "a"}]
    client = events._publishers[(os.getpid(), url)]

    stack.stop_redis(own_redis)
    stack.start_redis(own_redis, persistent=False)
    listener = _listen(own_redis, "scriptorium:test:restart")
    before = events.dropped_events
    assert events.publish("scriptorium:test:restart", {"type": "token", "text": "b"}, url)
    assert _received(listener) == [{"type": "token", "text": "b"}]
    assert events.dropped_events == before
    assert events._publishers[(os.getpid(), url)] is client  # the same pool, reconnected


def test_redis_down_drops_events_logs_once_and_recovers(own_redis, monkeypatch, caplog):
    url = stack.redis_url_for(own_redis.socket)
    assert events.publish("scriptorium:test:down", {"type": "token", "text": "a"}, url)
    stack.stop_redis(own_redis)
    monkeypatch.setattr(events, "PUBLISH_BACKOFF", 0.0)  # every publish tries Redis again
    before = events.dropped_events
    with caplog.at_level(logging.WARNING, logger="workers.events"):
        started = time.monotonic()
        for n in range(20):  # a token loop while Redis is down: never raises
            assert events.publish("scriptorium:test:down", {"type": "token", "text": str(n)},
                                  url) is False
        assert time.monotonic() - started < 20 * events.PUBLISH_TIMEOUT
    assert events.dropped_events - before == 20
    assert len(caplog.records) == 1 and "not sent" in caplog.text  # once per outage
    caplog.clear()

    stack.start_redis(own_redis, persistent=False)
    listener = _listen(own_redis, "scriptorium:test:down")
    with caplog.at_level(logging.WARNING, logger="workers.events"):
        assert events.publish("scriptorium:test:down", {"type": "token", "text": "z"}, url)
    assert _received(listener) == [{"type": "token", "text": "z"}]
    assert [r.getMessage() for r in caplog.records] == [
        "live events sent again; 20 dropped while Redis was unreachable"]


def test_a_hung_redis_stalls_a_token_loop_by_one_timeout_at_most(own_redis):
    """A frozen server (SIGSTOP: it accepts nothing, answers nothing) costs one publish
    PUBLISH_TIMEOUT; the events after it, within the back-off, are dropped at once."""
    url = stack.redis_url_for(own_redis.socket)
    assert events.publish("scriptorium:test:hung", {"type": "token", "text": "a"}, url)
    os.kill(int(own_redis.pidfile.read_text()), signal.SIGSTOP)
    try:
        started = time.monotonic()
        assert events.publish("scriptorium:test:hung", {"type": "token", "text": "b"}, url) \
            is False
        first = time.monotonic() - started
        started = time.monotonic()
        for n in range(100):
            assert events.publish("scriptorium:test:hung", {"type": "token", "text": str(n)},
                                  url) is False
        rest = time.monotonic() - started
    finally:
        os.kill(int(own_redis.pidfile.read_text()), signal.SIGCONT)
    assert events.PUBLISH_TIMEOUT * 0.9 <= first < events.PUBLISH_TIMEOUT + 1.0
    assert rest < 0.5


@pytest.mark.django_db(transaction=True)  # the task opens and closes connections itself
def test_an_answer_whose_redis_dies_mid_stream_is_answered(own_redis, team, member, settings,
                                                           monkeypatch):
    """A real answer job (a scripted OpenAI-compatible server streams its tokens) whose live
    events' Redis is shut down between two tokens: the job ends done at its first attempt,
    its answer on the row; the events after the shutdown are dropped, not raised."""
    from apps.chat import services
    from apps.chat.models import MessageStatus
    from tests.llm.llm_fakes import ScriptedServer, chat_payload, sse_event
    from tests.test_chat import _ready_document, _run_job
    from workers.llm import reset_backend
    from workers.llm.model_store import ensure_model

    settings.REDIS_URL = stack.redis_url_for(own_redis.socket)

    def answer_then_lose_redis(handler, body):
        if not body.get("stream"):  # a call that wants the whole reply at once
            return handler.send_json(200, chat_payload("The passkey is written in the memo."))
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                            b"Connection: close\r\n\r\n")
        for delta in ("The passkey", " is"):
            handler.wfile.write(sse_event(delta))
        handler.wfile.flush()
        time.sleep(0.3)
        stack.stop_redis(own_redis)  # Redis goes away mid-answer
        for delta in (" written", " in the memo."):
            handler.wfile.write(sse_event(delta))
        handler.send_raw(b"data: [DONE]\n\n")

    server = ScriptedServer({"/v1/chat/completions": answer_then_lose_redis})
    memo = ("The lighthouse keeper writes in the memo that the lamp was cleaned each morning, "
            "that the stairs were painted in spring, and that visitors came on Sundays. ") * 20
    conversation = services.start_conversation(team, member, [_ready_document(team, memo)])
    for name, value in {"LLM_BACKEND": "openai", "LLM_BASE_URL": server.url,
                        "LLM_MODEL": "fake-model", "LLM_CONTEXT_WINDOW": "8192",
                        "LLM_TOKENIZER": str(ensure_model()), "LLM_MAX_ATTEMPTS": "1"}.items():
        monkeypatch.setenv(name, value)
    reset_backend()
    before = events.dropped_events
    try:
        reply = services.ask(conversation, member, "What does the keeper write about?", "full")
        outcome = _run_job(reply)
    finally:
        server.stop()
        monkeypatch.undo()
        reset_backend()
    reply.refresh_from_db()
    assert outcome != "failed after retries" and reply.job.status == "succeeded", reply.job.error
    assert reply.status == MessageStatus.DONE and reply.content  # (the engine's final text)
    assert server.paths() == ["/v1/chat/completions"]  # streamed once: no retry was needed
    assert events.dropped_events - before >= 2  # the tokens after the shutdown, and "done"
