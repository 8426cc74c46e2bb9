"""Live events of a job (tokens of an answer as they are generated) over Redis pub/sub.

The worker publishes; the web server's SSE view subscribes. Events are JSON objects with a
"type". Pub/sub keeps nothing: a late subscriber reads the row for what it missed, then
follows the channel. No Django here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)


def _client_kwargs(url: str) -> dict[str, Any]:
    """redis-py arguments for our URLs, including kombu's redis+socket:///path?virtual_host=N."""
    parts = urlsplit(url)
    if parts.scheme == "redis+socket":
        db = int((parse_qs(parts.query).get("virtual_host") or ["0"])[0] or 0)
        return {"unix_socket_path": parts.path, "db": db}
    return {"url": url}


def redis_py_url(url: str) -> str:
    """The same server in redis-py's URL form: kombu's redis+socket:///path?virtual_host=N
    (the embedded Redis) becomes unix:///path?db=N; other URLs are already fine."""
    kwargs = _client_kwargs(url)
    if "url" in kwargs:
        return url
    return f"unix://{kwargs['unix_socket_path']}?db={kwargs['db']}"


# One pool per process (per event loop: an asyncio connection belongs to the loop that made
# it), for the subscriptions' connection and the stream bookkeeping of apps.core.sse.
_pools: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def async_client(url: str | None = None):
    """A redis.asyncio client on this process's shared connection pool for `url`."""
    import redis.asyncio as aioredis

    url = redis_py_url(url or _url())
    pools = _pools.setdefault(asyncio.get_running_loop(), {})
    if url not in pools:
        pools[url] = aioredis.ConnectionPool.from_url(url)
    return aioredis.Redis(connection_pool=pools[url])


def _url() -> str:
    return os.environ.get("SCRIPTORIUM_EVENTS_URL") or os.environ["REDIS_URL"]


def channel(kind: str, pk: int) -> str:
    return f"scriptorium:{kind}:{pk}"


# Publishing: one client (one connection pool) per process and URL, shared by its threads
# (redis-py's pool is thread-safe); a streamed answer publishes every token through it.
PUBLISH_TIMEOUT = 1.0  # seconds: a hung Redis delays a token this long at most...
PUBLISH_BACKOFF = 5.0  # ...and after a failure, events are dropped this long, not retried
# At most one immediate retry, on a broken connection (a socket that died with the server
# between two checks); none on a timeout and no back-off sleeps: redis-py's default retries
# three times with sleeps, which froze a token loop ~10 s per event on a hung Redis.
_PUBLISH_RETRY = Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,))
_publishers: dict[tuple[int, str], redis.Redis] = {}
_publishers_lock = threading.Lock()


@dataclass
class _Outage:
    """Redis unreachable for one publisher: one warning when it starts, one line when it ends."""

    retry_at: float
    dropped: int = 0


_outages: dict[tuple[int, str], _Outage] = {}
dropped_events = 0  # live events this process could not send, since it started


def _publisher(key: tuple[int, str]) -> redis.Redis:
    with _publishers_lock:
        client = _publishers.get(key)
        if client is None:  # per pid: a forked child must not share its parent's sockets
            kwargs = {**_client_kwargs(key[1]), "socket_timeout": PUBLISH_TIMEOUT,
                      "socket_connect_timeout": PUBLISH_TIMEOUT, "retry": _PUBLISH_RETRY}
            url = kwargs.pop("url", None)
            client = redis.Redis.from_url(url, **kwargs) if url else redis.Redis(**kwargs)
            _publishers[key] = client
        return client


def publish(name: str, event: dict[str, Any], url: str | None = None) -> bool:
    """Send ``event`` to whoever listens on ``name``, over this process's pooled client.

    Live events are a convenience (the row is the truth, and a reader catches up from it):
    a failed publish returns False and never raises into the job that publishes. An outage
    is logged once, when it starts, and once when events flow again (with how many were
    dropped); meanwhile events are dropped at once for ``PUBLISH_BACKOFF`` seconds between
    tries rather than each waiting on a Redis that is down."""
    global dropped_events
    key = (os.getpid(), url or _url())
    outage = _outages.get(key)
    if outage is not None and time.monotonic() < outage.retry_at:
        outage.dropped += 1
        dropped_events += 1
        return False
    try:
        _publisher(key).publish(name, json.dumps(event))
    except (redis.RedisError, OSError) as exc:
        dropped_events += 1
        if outage is None:
            outage = _outages[key] = _Outage(0.0)
            log.warning("live events not sent (Redis unreachable; dropped, retried every "
                        "%.0f s until it answers): %s", PUBLISH_BACKOFF, exc)
        outage.dropped += 1
        outage.retry_at = time.monotonic() + PUBLISH_BACKOFF
        return False
    if outage is not None:
        _outages.pop(key, None)
        log.warning("live events sent again; %d dropped while Redis was unreachable",
                    outage.dropped)
    return True


class StreamLost(ConnectionError):
    """The shared subscription connection failed, or this reader fell too far behind; the
    stream ends and the browser reconnects (and reads a fresh snapshot)."""


class _Hub:
    """Every subscription of a process (of an event loop) on ONE pub/sub connection: a
    channel is subscribed while someone listens to it, and one reader task hands each
    message to the listeners' queues. Idle (nobody listening), the connection is closed."""

    QUEUE_SIZE = 1000  # events a slow reader may fall behind before its stream ends

    def __init__(self, url: str):
        self.url = url
        self.pubsub = None
        self.listeners: dict[str, set[asyncio.Queue]] = {}
        self.confirmed: dict[str, asyncio.Future] = {}
        self.lock = asyncio.Lock()
        self.reader: asyncio.Task | None = None

    async def join(self, name: str) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(self.QUEUE_SIZE)
        async with self.lock:
            if name not in self.listeners:
                # Before subscribing: the reader may see Redis confirm it at once.
                self.confirmed[name] = asyncio.get_running_loop().create_future()
                try:
                    if self.pubsub is None:
                        self.pubsub = async_client(self.url).pubsub()
                    await self.pubsub.subscribe(name)
                except BaseException:
                    del self.confirmed[name]
                    raise
                self.listeners[name] = set()
            self.listeners[name].add(queue)
            confirmed = self.confirmed[name]
            if self.reader is None:  # one reader per connection, started with it
                self.reader = asyncio.create_task(self._read(self.pubsub))
        try:  # Redis has confirmed: whatever is published from now on reaches the queue
            await asyncio.wait_for(asyncio.shield(confirmed), 30)
        except BaseException:
            await self.leave(name, queue)
            raise
        return queue

    async def leave(self, name: str, queue: asyncio.Queue) -> None:
        async with self.lock:
            listeners = self.listeners.get(name)
            if listeners is None or queue not in listeners:
                return
            listeners.discard(queue)
            if not listeners:
                del self.listeners[name]
                self.confirmed.pop(name, None)
                if self.pubsub is not None:
                    # A failing connection: the reader ends every stream of it.
                    with contextlib.suppress(Exception):
                        await self.pubsub.unsubscribe(name)

    async def _read(self, pubsub) -> None:
        try:
            while True:
                message = await pubsub.get_message(timeout=None)
                if message is None:
                    continue
                channel = message["channel"].decode()
                if message["type"] == "subscribe" and channel in self.confirmed:
                    if not self.confirmed[channel].done():
                        self.confirmed[channel].set_result(True)
                elif message["type"] == "message":
                    self._hand_out(channel, message["data"])
                elif message["type"] == "unsubscribe" and await self._closed_if_idle():
                    return
        except asyncio.CancelledError:
            raise
        except Exception as err:  # the connection failed: every stream ends, none hangs
            await self._fail(err)

    def _hand_out(self, channel: str, data: bytes) -> None:
        for queue in list(self.listeners.get(channel, ())):
            try:
                queue.put_nowait(data)
            except asyncio.QueueFull:
                self.listeners[channel].discard(queue)
                queue.get_nowait()
                queue.put_nowait(StreamLost("This stream fell too far behind."))

    async def _closed_if_idle(self) -> bool:
        async with self.lock:
            if self.listeners:
                return False
            pubsub, self.pubsub, self.reader = self.pubsub, None, None
        await pubsub.aclose()  # the connection goes back to the shared pool
        return True

    async def _fail(self, err: Exception) -> None:
        async with self.lock:
            for name, listeners in self.listeners.items():
                for queue in listeners:
                    queue.put_nowait(StreamLost(f"Live events were interrupted: {err}"))
                if not self.confirmed[name].done():
                    self.confirmed[name].set_exception(StreamLost(str(err)))
            self.listeners.clear()
            self.confirmed.clear()
            pubsub, self.pubsub, self.reader = self.pubsub, None, None
        if pubsub is not None:
            await pubsub.aclose()


_hubs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _hub(url: str) -> _Hub:
    hubs = _hubs.setdefault(asyncio.get_running_loop(), {})
    if url not in hubs:
        hubs[url] = _Hub(url)
    return hubs[url]


class Subscription:
    """`async with Subscription(name, url) as events:` — subscribed on entry, so a reader can
    take a snapshot of the row afterwards and miss nothing; then `async for event in events`
    yields events (and a {"type": "ping"} after each `idle` seconds of silence). All
    subscriptions of a process share one Redis connection (_Hub)."""

    def __init__(self, name: str, url: str | None = None, idle: float = 15.0):
        self.name, self.url, self.idle = name, url or _url(), idle

    async def __aenter__(self) -> Subscription:
        self.hub = _hub(self.url)
        self.queue = await self.hub.join(self.name)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.hub.leave(self.name, self.queue)

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._events()

    async def _events(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            try:
                data = await asyncio.wait_for(self.queue.get(), self.idle)
            except TimeoutError:
                yield {"type": "ping"}
                continue
            yield self._decoded(data)

    def ready(self) -> list[dict[str, Any]]:
        """The events that have arrived and not been read yet, without waiting (a reader
        catches up on them before it compares what it has with the row)."""
        ready = []
        while not self.queue.empty():
            ready.append(self._decoded(self.queue.get_nowait()))
        return ready

    @staticmethod
    def _decoded(data) -> dict[str, Any]:
        if isinstance(data, StreamLost):
            raise data
        return json.loads(data)
