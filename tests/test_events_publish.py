"""Publishing live events: one pooled client per process (not a connection per token), and
a publish that fails never fails the job that publishes."""

from __future__ import annotations

import json
import logging
import os
import threading

import pytest
import redis
from django.conf import settings

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
    monkeypatch.setattr(events, "_down_until", {})
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
