"""What the broker (Redis, kombu's layout) holds: task ids waiting in queues or delivered
to a worker and not yet acknowledged. The sweeper compares jobs against this set."""

from __future__ import annotations

import json

from workers.celery import app
from workers.queues import JOB_QUEUES

QUEUES = JOB_QUEUES
# kombu keeps priority levels as separate lists: "<queue>", "<queue>\x06\x163", ...
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


def _task_id(raw: bytes | str) -> str | None:
    try:
        message = json.loads(raw)
    except (TypeError, ValueError):
        return None
    if isinstance(message, list):  # the unacked hash stores [message, exchange, routing key]
        message = message[0] if message else {}
    if not isinstance(message, dict):
        return None
    headers = message.get("headers") or {}
    return headers.get("id") or (message.get("properties") or {}).get("correlation_id")


def held_task_ids(queues: tuple[str, ...] = QUEUES) -> set[str]:
    ids: set[str] = set()
    with app.connection_for_read() as conn:
        client = conn.default_channel.client
        for queue in queues:
            for suffix in _PRIORITY_SUFFIXES:
                for raw in client.lrange(queue + suffix, 0, -1):
                    ids.add(_task_id(raw))
        for raw in client.hvals("unacked"):
            ids.add(_task_id(raw))
    ids.discard(None)
    return ids
