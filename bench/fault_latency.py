"""What the fault-injection benchmark measures of chats (``bench.faults``): the time each
message's first token was published."""

from __future__ import annotations

import contextlib
import json
import threading
import time


class FirstTokens:
    """Follows every chat message's Redis channel and keeps the time of each message's
    first token. Reconnects after a Redis restart (a token published meanwhile is lost:
    events are best effort; the latency phases inject no fault)."""

    def __init__(self, redis_url: str):
        import redis

        from workers import events

        self.client = redis.Redis.from_url(events.redis_py_url(redis_url))
        self.pattern = events.channel("message", 0)[:-1] + "*"
        self.first: dict[int, float] = {}
        self._stop = threading.Event()
        threading.Thread(target=self._run, daemon=True, name="first-tokens").start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                pubsub = self.client.pubsub()
                pubsub.psubscribe(self.pattern)
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=0.5)
                    if message and message["type"] == "pmessage":
                        self._seen(message, time.time())
            except Exception:  # noqa: BLE001 - Redis restarting: follow it again shortly
                time.sleep(0.5)

    def _seen(self, message: dict, at: float) -> None:
        with contextlib.suppress(ValueError, TypeError):
            if json.loads(message["data"]).get("type") == "token":
                self.first.setdefault(int(message["channel"].rsplit(b":", 1)[1]), at)

    def stop(self) -> None:
        self._stop.set()
