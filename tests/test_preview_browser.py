"""In the browser: the cost of a question shows under it as it is typed, with times from the
model's recorded speed (the calls a worker records, as `workers.llm.rates` stores them)."""

from __future__ import annotations

import pytest
from django.conf import settings

from apps.chat import services
from tests.api.conftest import ready_document
from tests.factories import MembershipFactory
from tests.test_browser import page  # noqa: F401 - the Playwright page fixture
from tests.test_writing_browser import _login
from workers.llm import get_backend
from workers.llm.rates import CallSample, book, model_key

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
TEXT = "The harbour's northern quay was rebuilt by Kessler Marine Works in 2023. " * 800


def test_the_preview_shows_each_strategys_time_as_a_question_is_typed(page, live_server):  # noqa: F811
    member = MembershipFactory(role="member")
    document = ready_document(member.team, text=TEXT, title="Harbour report")
    document.tokens = get_backend().count_tokens(TEXT)
    document.save(update_fields=["tokens"])
    conversation = services.start_conversation(member.team, member.user, [document], "Harbour")
    store, model = book(settings.REDIS_URL), model_key(get_backend())
    store.forget(model)  # only the calls below: earlier tests' calls ran on a busy machine
    for prompt, written, seconds in [(2000, 1, 2.1), (0, 100, 5.0), (4000, 1, 4.1),
                                     (0, 40, 2.0), (1000, 1, 1.1), (0, 10, 0.5)]:
        store.record(model, CallSample(prompt, written, seconds))  # as the workers record
    _login(page, live_server, member.user)
    page.goto(f"{live_server.url}/t/{member.team.slug}/chat/{conversation.pk}/")
    page.fill("textarea[name=question]", "Who rebuilt the quay?")
    preview = page.wait_for_selector("[data-testid=preview]", timeout=120_000)
    text = preview.inner_text()
    assert f"{document.tokens:,} tokens" in text
    for strategy in ("rag", "xl3m", "coa", "mapreduce"):
        row = page.locator(f"[data-testid=preview] tr[data-strategy={strategy}]").inner_text()
        assert "≈" in row and "not measured yet" not in row, row
    page.select_option("select[name=strategy]", "rag")
    page.wait_for_selector("[data-testid=preview] tr.chosen[data-strategy=rag]",
                           timeout=60_000)
