"""The outline editor of a writing project in a real browser (Playwright + Debian's
chromium, live server): add, edit with the live total, move (persisted), delete, and the
lock while a job runs. No model generation: the write job is queued and stays queued (no
worker runs here), which is exactly the state in which the outline must be locked."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connections
from django.test import Client
from django.urls import reverse

from apps.jobs.models import Status
from apps.writing import services
from apps.writing.models import ProjectStatus
from tests.factories import MembershipFactory
from tests.test_browser import page  # noqa: F401 - the Playwright page fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _login(page, live_server, user) -> None:  # noqa: F811 - `page` is the fixture's value
    """The browser gets a real session of ``user`` (the login form has its own tests)."""
    client = Client()
    client.force_login(user)
    page.context.add_cookies([{
        "name": settings.SESSION_COOKIE_NAME,
        "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
        "url": live_server.url}])


def _swapped(page, action) -> None:  # noqa: F811
    """Run ``action`` (a click that posts through HTMX) and wait until the server's outline
    has replaced the old one, so that the next click never lands on a stale form."""
    page.evaluate("document.getElementById('outline').dataset.stale = '1'")
    action()
    page.wait_for_selector("#outline:not([data-stale])", state="attached")


def _points(page) -> list[str]:  # noqa: F811
    return page.locator("#outline input[name=point]:not([placeholder])").evaluate_all(
        "els => els.map(e => e.value)")


def test_outline_editor_in_the_browser_then_locked_while_a_job_runs(page, live_server):  # noqa: F811
    try:
        _edit_the_outline_then_lock_it(page, live_server)
    finally:
        # ORM calls made while Playwright's sync API runs use a connection of their own
        # (another context), which the test database teardown would find still open.
        connections.close_all()


def _edit_the_outline_then_lock_it(page, live_server) -> None:  # noqa: F811
    from playwright.sync_api import expect

    membership = MembershipFactory()  # a team member (role "member")
    project = services.create_project(membership.team, membership.user,
                                      instruction="Write a history of lighthouses.",
                                      target_words=1000, title="Lighthouses")
    services.add_section(project, "Why coasts needed lights", 300)
    services.add_section(project, "The keepers", 400)
    url = live_server.url + reverse("writing:detail", kwargs={
        "team_slug": membership.team.slug, "pk": project.pk})
    _login(page, live_server, membership.user)
    page.on("dialog", lambda dialog: dialog.accept())  # the delete confirmation
    page.goto(url)
    total = page.get_by_test_id("outline-total")
    rows = page.locator("form.outline-row")
    expect(total).to_have_text("700")

    # Add a section (HTMX swaps the outline in place: no page load).
    page.get_by_label("Main point of a new section").fill("Lighthouses today")
    page.get_by_label("Words of the new section").fill("300")
    _swapped(page, page.get_by_role("button", name="Add section").click)
    expect(page.get_by_label("Main point of section 3")).to_have_value("Lighthouses today")
    expect(total).to_have_text("1,000")

    # Edit a point and a word count: the total follows each keystroke, before any save.
    words = page.get_by_label("Words of section 2")
    words.fill("")
    expect(total).to_have_text("600")
    words.press_sequentially("55")
    expect(total).to_have_text("655")
    words.press_sequentially("0")
    expect(total).to_have_text("1,150")
    page.get_by_label("Main point of section 2").fill("Life of the keepers")
    _swapped(page, rows.nth(1).get_by_role("button", name="Save").click)
    expect(page.get_by_label("Main point of section 2")).to_have_value("Life of the keepers")
    expect(page.get_by_label("Words of section 2")).to_have_value("550")
    expect(total).to_have_text("1,150")

    # Move the last section up, then the first one down; the order survives a reload.
    _swapped(page, rows.nth(2).get_by_title("Move up").click)
    expect(page.get_by_label("Main point of section 2")).to_have_value("Lighthouses today")
    _swapped(page, rows.nth(0).get_by_title("Move down").click)
    expect(page.get_by_label("Main point of section 1")).to_have_value("Lighthouses today")
    page.reload()
    assert _points(page) == ["Lighthouses today", "Why coasts needed lights",
                             "Life of the keepers"]
    assert [(s.position, s.point, s.target_words) for s in project.sections.all()] == [
        (1, "Lighthouses today", 300), (2, "Why coasts needed lights", 300),
        (3, "Life of the keepers", 550)]

    # Delete one (after the confirmation dialog).
    _swapped(page, rows.nth(1).get_by_title("Delete").click)
    expect(rows).to_have_count(2)
    expect(total).to_have_text("850")
    assert _points(page) == ["Lighthouses today", "Life of the keepers"]

    # A second tab starts the write job while this tab still shows the editor.
    # (The live stream of the text being written is not this test's subject: it is cut
    # off, so that no server thread is left listening for a job that never runs here.)
    page.context.route("**/stream/", lambda route: route.abort())
    other = page.context.new_page()
    other.goto(url)
    other.get_by_test_id("write").click()
    expect(other.get_by_test_id("outline-locked")).to_contain_text("locked")
    expect(other.get_by_label("Main point of section 1")).to_be_disabled()
    expect(other.get_by_test_id("write")).to_be_disabled()
    project.refresh_from_db()
    assert project.status == ProjectStatus.WRITING and project.is_busy
    assert project.job.status == Status.QUEUED
    other.close()

    # The stale editor's save is refused by the server, and the refusal is shown.
    page.get_by_label("Main point of section 1").fill("Changed while writing")
    _swapped(page, rows.nth(0).get_by_role("button", name="Save").click)
    expect(page.get_by_test_id("outline-error")).to_contain_text("locked")
    expect(page.get_by_test_id("outline-locked")).to_be_visible()
    expect(page.get_by_label("Main point of section 1")).to_have_value("Lighthouses today")
    expect(page.get_by_label("Main point of section 1")).to_be_disabled()
    expect(page.get_by_role("button", name="Add section")).to_have_count(0)
    assert [s.point for s in project.sections.all()] == ["Lighthouses today",
                                                         "Life of the keepers"]

