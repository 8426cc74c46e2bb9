"""A live answer whose stream is refused (429: too many streams open) in a real browser:
EventSource cannot read the status and stops for good, so the page must say why and follow
the saved message instead of showing "Reconnecting…" forever."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.chat.models import Conversation, Message, MessageStatus
from tests.test_browser import page  # noqa: F401 - the Playwright page fixture
from tests.test_writing_browser import _login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_refused_stream_says_so_then_shows_the_answer_when_done(page, live_server, team,  # noqa: F811
                                                                member, settings):
    from playwright.sync_api import expect

    settings.SSE_MAX_STREAMS_PER_USER = 0  # every stream is refused with a 429
    conversation = Conversation.objects.create(team=team, title="Live")
    Message.objects.create(conversation=conversation, role="user", content="Question?")
    reply = Message.objects.create(conversation=conversation, role="assistant",
                                   status=MessageStatus.STREAMING, content="Half an")
    _login(page, live_server, member)
    page.goto(live_server.url + reverse("chat:detail", kwargs={"team_slug": team.slug,
                                                               "pk": conversation.pk}))
    row = page.locator(f"#message-{reply.pk}")
    expect(row.locator(".live-status")).to_contain_text("Too many live streams open",
                                                        timeout=10_000)
    Message.objects.filter(pk=reply.pk).update(content="Half an answer, still going")
    expect(row.locator(".answer")).to_have_text("Half an answer, still going", timeout=15_000)
    Message.objects.filter(pk=reply.pk).update(status=MessageStatus.DONE,
                                               content="The **whole** answer.")
    expect(row.get_by_test_id("answer")).to_contain_text("The whole answer.", timeout=15_000)
    expect(row.locator("strong")).to_have_text("whole")
    expect(page.get_by_text("Reconnecting")).to_have_count(0)
