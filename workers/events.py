"""Live events of a job (tokens of an answer as they are generated) over Redis pub/sub.

The worker publishes; the web server's SSE view subscribes. Events are JSON objects with a
"type". Pub/sub keeps nothing: a late subscriber reads the row for what it missed, then
follows the channel. No Django here.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit


def _client_kwargs(url: str) -> dict[str, Any]:
    """redis-py arguments for our URLs, including kombu's redis+socket:///path?virtual_host=N."""
    parts = urlsplit(url)
    if parts.scheme == "redis+socket":
        db = int((parse_qs(parts.query).get("virtual_host") or ["0"])[0] or 0)
        return {"unix_socket_path": parts.path, "db": db}
    return {"url": url}


def _url() -> str:
    return os.environ.get("SCRIPTORIUM_EVENTS_URL") or os.environ["REDIS_URL"]


def channel(kind: str, pk: int) -> str:
    return f"scriptorium:{kind}:{pk}"


def publish(name: str, event: dict[str, Any], url: str | None = None) -> None:
    import redis

    kwargs = _client_kwargs(url or _url())
    client = redis.Redis.from_url(kwargs.pop("url")) if "url" in kwargs else redis.Redis(**kwargs)
    try:
        client.publish(name, json.dumps(event))
    finally:
        client.close()


class Subscription:
    """`async with Subscription(name, url) as events:` — subscribed on entry, so a reader can
    take a snapshot of the row afterwards and miss nothing; then `async for event in events`
    yields events (and a {"type": "ping"} every 15 s of silence)."""

    def __init__(self, name: str, url: str | None = None):
        self.name, self.url = name, url or _url()

    async def __aenter__(self) -> Subscription:
        import redis.asyncio as aioredis

        kwargs = _client_kwargs(self.url)
        self.client = (aioredis.Redis.from_url(kwargs.pop("url")) if "url" in kwargs
                       else aioredis.Redis(**kwargs))
        self.pubsub = self.client.pubsub()
        await self.pubsub.subscribe(self.name)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.pubsub.unsubscribe(self.name)
        await self.pubsub.aclose()
        await self.client.aclose()

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._events()

    async def _events(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            message = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=15.0)
            yield {"type": "ping"} if message is None else json.loads(message["data"])
