"""A live answer in a real browser whose stream keeps dropping (Redis unreachable: each stream
follows the row, then ends, and EventSource reconnects): every reconnection shows the row's
text in place of what was shown — never a token twice — and the rendered answer replaces
the live one once the row has ended, though no "done" event was ever published."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.chat.models import Conversation, Message, MessageStatus
from apps.core import sse
from tests.test_browser import page  # noqa: F401 - the Playwright page fixture
from tests.test_writing_browser import _login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_reconnections_show_the_row_and_the_end_comes_from_the_row(
        page, live_server, team, member, settings, monkeypatch, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    settings.REDIS_URL = f"redis+socket://{tmp_path}/no-redis.sock?virtual_host=0"
    monkeypatch.setattr(sse, "ROW_CHECK_SECONDS", 0.2)
    monkeypatch.setattr(sse, "ROWS_ONLY_SECONDS", 0.5)  # a stream ends every half second...
    monkeypatch.setattr(sse, "RECONNECT_MS", 200)  # ...and the browser is back 0.2 s later
    conversation = Conversation.objects.create(team=team, title="Live")
    Message.objects.create(conversation=conversation, role="user", content="Question?")
    reply = Message.objects.create(conversation=conversation, role="assistant",
                                   status=MessageStatus.STREAMING, content="Half an")
    connections = []
    page.on("request", lambda r: connections.append(r.url) if "/stream/" in r.url else None)
    _login(page, live_server, member)
    page.goto(live_server.url + reverse("chat:detail", kwargs={"team_slug": team.slug,
                                                               "pk": conversation.pk}))
    row = page.locator(f"#message-{reply.pk}")
    for _ in range(100):  # several reconnections, each with its snapshot
        if len(connections) >= 4:
            break
        page.wait_for_timeout(100)
    assert len(connections) >= 4, connections
    expect(row.locator(".answer")).to_have_text("Half an")  # replaced each time, not appended
    partial = "Half an <img src=x onerror=alert(1)> answer"  # model text: never HTML here
    Message.objects.filter(pk=reply.pk).update(content=partial)  # a partial save
    expect(row.locator(".answer")).to_have_text(partial, timeout=10_000)
    expect(row.locator(".answer img")).to_have_count(0)
    Message.objects.filter(pk=reply.pk).update(status=MessageStatus.DONE,
                                               content="The **whole** answer.")
    expect(row.get_by_test_id("answer")).to_contain_text("The whole answer.", timeout=10_000)
    expect(row.locator("strong")).to_have_text("whole")  # rendered Markdown, sanitised
    expect(row.locator(".live-status")).to_have_count(0)
