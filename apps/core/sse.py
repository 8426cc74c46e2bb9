"""Server-sent events for the async views that stream model output to the browser.

Each open stream holds a slot: at most SSE_MAX_STREAMS_PER_USER for one person (counted in
Redis, so across every web process) and SSE_MAX_STREAMS_PER_PROCESS in one process (all of
whose subscriptions share one Redis connection, workers.events). Past either the answer is
a 429 that says which. A slot is a lease renewed as the stream sends (at least its 15 s
ping), so one lost without clean-up (a killed process) frees itself.

Live events are best effort, rows are truth (`follow`): a stream starts with a snapshot of
its row, re-reads the row every ROW_CHECK_SECONDS (a job that ended while its events were
lost ends the stream; text the browser missed is replaced by the row's), and without Redis
it follows the row alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from typing import Protocol

import redis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse

from apps.teams.access import resolve_team
from workers import events

log = logging.getLogger(__name__)

LEASE_SECONDS = 45.0  # three pings: a live stream renews its slot well before it ends
RETRY_AFTER_SECONDS = 15
ROW_CHECK_SECONDS = 3.0  # a stream re-reads its row this often (and pings when idle)
ROWS_ONLY_SECONDS = 30.0  # without Redis, a stream follows its row this long at most...
RECONNECT_MS = 2000  # ...and the browser reconnects after this long, to try live events again
REDIS_ERRORS = (redis.RedisError, OSError)  # OSError: events.StreamLost, socket errors

_process_slots: dict[str, float] = {}  # this process's streams: slot id → lease end
_warned: dict[str, float] = {}  # what was logged, when


def _warn(what: str, err: Exception) -> None:
    """A line a minute for each kind of trouble: an outage must not write one per stream."""
    now = time.monotonic()
    if now - _warned.get(what, -60.0) >= 60.0:
        _warned[what] = now
        log.warning("%s (Redis unreachable): %s", what, err)


def sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


async def stream_membership(request, team_slug: str):
    """The team membership of an async streaming request, through the one access helper
    (non-members get 404); a login redirect response when nobody is signed in."""
    user = await request.auser()
    if not user.is_authenticated:
        from django.contrib.auth.views import redirect_to_login

        return None, redirect_to_login(request.get_full_path())
    return await sync_to_async(resolve_team)(user, team_slug), None


class StreamSlot:
    def __init__(self, user_id: int):
        self.id = secrets.token_hex(8)
        self.key = f"scriptorium:sse:user:{user_id}"
        self.renewed = 0.0

    async def take(self) -> str | None:
        """Take the slot; None if taken, else why not (for the 429)."""
        now = time.time()
        for slot, end in list(_process_slots.items()):
            if end < now:
                del _process_slots[slot]
        if len(_process_slots) >= settings.SSE_MAX_STREAMS_PER_PROCESS:
            return ("This server has as many live streams open as it may "
                    f"({settings.SSE_MAX_STREAMS_PER_PROCESS}). Try again shortly.")
        _process_slots[self.id] = now + LEASE_SECONDS  # before any await: no race in-process
        try:
            async with events.async_client(settings.REDIS_URL).pipeline(transaction=True) as pipe:
                pipe.zremrangebyscore(self.key, "-inf", now)
                pipe.zadd(self.key, {self.id: now + LEASE_SECONDS})
                pipe.zcard(self.key)
                pipe.expire(self.key, int(LEASE_SECONDS) + 1)
                _, _, count, _ = await pipe.execute()
        except REDIS_ERRORS as err:  # the page follows its row meanwhile: let it (per process cap)
            _warn("live stream slots not counted per person", err)
            count = 0
        self.renewed = now
        if count > settings.SSE_MAX_STREAMS_PER_USER:
            await self.release()
            return (f"You have {settings.SSE_MAX_STREAMS_PER_USER} live views open, the most "
                    "one person may. Close one (another tab or window) and reload.")
        return None

    async def renew(self) -> None:
        now = time.time()
        if now - self.renewed < LEASE_SECONDS / 3:
            return
        self.renewed = now
        _process_slots[self.id] = now + LEASE_SECONDS
        client = events.async_client(settings.REDIS_URL)
        with contextlib.suppress(*REDIS_ERRORS):  # Redis down: the stream goes on, from its row
            await client.zadd(self.key, {self.id: now + LEASE_SECONDS}, xx=True)
            await client.expire(self.key, int(LEASE_SECONDS) + 1)

    async def release(self) -> None:
        _process_slots.pop(self.id, None)
        with contextlib.suppress(*REDIS_ERRORS):  # the lease frees it when Redis is back
            await events.async_client(settings.REDIS_URL).zrem(self.key, self.id)


async def _held(slot: StreamSlot, stream: AsyncIterator[str]) -> AsyncIterator[str]:
    try:
        async for part in stream:
            yield part
            await slot.renew()
    finally:
        try:
            await stream.aclose()  # the view's own clean-up: its subscription ends
        finally:
            await slot.release()


async def event_stream_response(request, stream: AsyncIterator[str]) -> HttpResponse:
    """The SSE response for `stream` if the person and this process have a slot left; a
    429 saying which limit was reached otherwise (the stream is then never started)."""
    user = await request.auser()
    slot = StreamSlot(user.pk)
    refused = await slot.take()
    if refused:
        await stream.aclose()
        response = HttpResponse(refused, status=429, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    response = StreamingHttpResponse(_held(slot, stream), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # proxies must not buffer the stream
    return response


class LiveText:
    """What the browser shows of a text being written: the last snapshot sent (the row's text:
    the truth) and the tokens sent since."""

    def __init__(self, snapshot: str):
        self.snapshot, self.tokens, self.ahead = snapshot, [], None

    @property
    def text(self) -> str:
        return self.snapshot + "".join(self.tokens)

    def add(self, token: str) -> None:
        self.tokens.append(token)

    def resync(self, saved: str, live: bool = True) -> str | None:
        """The text the browser must show instead of its own, the row now holding `saved` (the
        whole text as it was at its last save); None while the two agree. `live`: tokens
        still come (the row saves every few seconds, so it may lag or lead a little)."""
        shown = self.text
        if not live:
            return None if saved == shown else saved
        if shown.startswith(saved):  # the row lags (saved a few seconds ago)
            self.ahead = None
            return None
        if saved.startswith(shown):  # the row leads: tokens on their way...
            lost = self.ahead is not None and not shown.startswith(self.ahead)
            self.ahead = None if lost else saved
            return saved if lost else None  # ...or, not here one check later, lost
        if not saved.startswith(self.snapshot):  # the text started over (a retry)
            return saved
        # The browser missed tokens (published before it subscribed, or dropped while Redis
        # was away): the row is the truth up to its save, and the tokens it has not saved yet
        # follow it. Saved are the first k tokens received, the most that the row ends with.
        joined, cut, total = "".join(self.tokens), 0, 0
        for token in self.tokens:
            total += len(token)
            if len(saved) - total >= len(self.snapshot) and saved.endswith(joined[:total]):
                cut = total
        return saved + joined[cut:]


class Follower(Protocol):
    """One kind of row followed live (a chat answer, a writing project): `follow` asks it for
    what to send. `finished` once the row has ended (its stream ends)."""

    finished: bool

    async def snapshot(self) -> list[str]: ...

    def event(self, event: dict) -> list[str]: ...

    async def check(self, live: bool) -> list[str]: ...


async def follow(follower: Follower, channel: str) -> AsyncIterator[str]:
    """A row's stream: its snapshot, then its live events, with the row re-read every
    ROW_CHECK_SECONDS; the row alone while Redis is unreachable. Subscribed before the
    snapshot is read, so no event falls in between."""
    async with contextlib.AsyncExitStack() as stack:
        try:
            live = await stack.enter_async_context(
                events.Subscription(channel, settings.REDIS_URL, idle=ROW_CHECK_SECONDS))
        except REDIS_ERRORS as err:
            _warn("live streams follow their rows only", err)
            live = None
        yield f"retry: {RECONNECT_MS}\n\n" + "".join(await follower.snapshot())
        if follower.finished:
            return
        if live is not None:
            try:
                async for part in _live(follower, live):
                    yield part
            except REDIS_ERRORS as err:  # the connection failed: on from the row
                _warn("live events interrupted; streams follow their rows", err)
            if follower.finished:
                return
        async for part in _rows_only(follower):
            yield part


async def _live(follower: Follower, live: events.Subscription) -> AsyncIterator[str]:
    checked = time.monotonic()
    async for event in live:
        sent = "" if event.get("type") == "ping" else "".join(follower.event(event))
        yield sent or ": ping\n\n"
        if not follower.finished and time.monotonic() - checked >= ROW_CHECK_SECONDS:
            # What has arrived first: the row's save came after the tokens it holds.
            parts = [part for ready in live.ready() for part in follower.event(ready)]
            if not follower.finished:
                parts += await follower.check(live=True)
            if parts:
                yield "".join(parts)
            checked = time.monotonic()
        if follower.finished:
            return


async def _rows_only(follower: Follower) -> AsyncIterator[str]:
    """The row every ROW_CHECK_SECONDS, until Redis answers again or for ROWS_ONLY_SECONDS;
    then the stream ends, and the browser's reconnection tries live events again."""
    deadline = time.monotonic() + ROWS_ONLY_SECONDS
    while time.monotonic() < deadline:
        await asyncio.sleep(ROW_CHECK_SECONDS)
        yield "".join(await follower.check(live=False)) or ": ping\n\n"
        if follower.finished or await _redis_answers():
            return


async def _redis_answers() -> bool:
    try:  # bounded: the shared pool has no socket timeout, and a dead host may never answer
        return bool(await asyncio.wait_for(events.async_client(settings.REDIS_URL).ping(), 0.5))
    except REDIS_ERRORS:  # TimeoutError is an OSError
        return False
