"""Server-sent events for the async views that stream model output to the browser.

Each open stream holds a slot: at most SSE_MAX_STREAMS_PER_USER for one person (counted in
Redis, so across every web process) and SSE_MAX_STREAMS_PER_PROCESS in one process (all of
whose subscriptions share one Redis connection, workers.events). Past either the answer is
a 429 that says which. A slot is a lease renewed as the stream sends (at least its 15 s
ping), so one lost without clean-up (a killed process) frees itself.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse

from apps.teams.access import resolve_team
from workers import events

LEASE_SECONDS = 45.0  # three pings: a live stream renews its slot well before it ends
RETRY_AFTER_SECONDS = 15

_process_slots: dict[str, float] = {}  # this process's streams: slot id → lease end


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
        async with events.async_client(settings.REDIS_URL).pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(self.key, "-inf", now)
            pipe.zadd(self.key, {self.id: now + LEASE_SECONDS})
            pipe.zcard(self.key)
            pipe.expire(self.key, int(LEASE_SECONDS) + 1)
            _, _, count, _ = await pipe.execute()
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
        await client.zadd(self.key, {self.id: now + LEASE_SECONDS}, xx=True)
        await client.expire(self.key, int(LEASE_SECONDS) + 1)

    async def release(self) -> None:
        _process_slots.pop(self.id, None)
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
