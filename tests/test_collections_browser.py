"""Collections in a real browser (Playwright + Debian's chromium, live server): an admin
makes a restricted collection, gives a member read access through the HTMX card, moves a
document into it and filters the library; a member without access does not see it.
Screenshots go to the test's tmp folder (COLLECTIONS_SHOTS=<dir> keeps them)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from apps.collections.models import Collection
from apps.documents.models import Document
from apps.teams.models import Role
from tests.api.conftest import ready_document
from tests.factories import MembershipFactory
from tests.test_browser import page  # noqa: F401 - the Playwright page fixture
from tests.test_writing_browser import _login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_restrict_grant_move_and_filter_in_the_browser(page, live_server, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    shots = Path(os.environ.get("COLLECTIONS_SHOTS") or tmp_path)
    owner = MembershipFactory(role=Role.OWNER)
    team = owner.team
    reader = MembershipFactory(team=team, role=Role.MEMBER)
    outsider_of_board = MembershipFactory(team=team, role=Role.MEMBER)
    secret = ready_document(team, "The board approved the Bluefinch merger.", "Board minutes")
    ready_document(team, "The canteen opens at eight.", "Newsletter")
    base = f"{live_server.url}/t/{team.slug}"

    _login(page, live_server, owner.user)
    page.goto(f"{base}/collections/")
    page.fill("input[placeholder=\"New collection's name\"]", "Board")
    page.check("input[name=restricted]")
    page.click("text=Create collection")
    card = page.locator("[data-testid=collection]", has_text="Board")
    expect(card.locator("[data-testid=collection-access]")).to_have_text("Restricted")
    card.locator("select[name=member]").select_option(
        label=f"{reader.user.email} (Member)")
    card.locator("text=Give access").click()  # HTMX: the card is swapped in place
    expect(page.locator("[data-testid=grant]")).to_contain_text(reader.user.email)
    page.screenshot(path=str(shots / "collections.png"), full_page=True)

    page.goto(f"{base}/documents/{secret.pk}/")
    board = Collection.objects.get(team=team, name="Board")
    page.select_option("select[name=collection]", str(board.pk))
    page.click("text=Move")
    expect(page.locator("[data-testid=doc-collection-card]")).to_contain_text("Board")
    page.goto(f"{base}/documents/")
    page.select_option("[data-testid=collection-filter]", str(board.pk))  # HTMX filter
    expect(page.locator("#doc-rows tr")).to_have_count(1)
    expect(page.locator("#doc-rows")).to_contain_text("in Board")
    # The upload box follows the filter: a file dropped now goes into the board.
    upload_into = page.locator("[data-testid=upload-collection]")
    expect(upload_into).to_have_value(str(board.pk))
    page.set_input_files("#file-input", files=[{"name": "agenda.txt", "mimeType": "text/plain",
                                                "buffer": b"Agenda of the next board meeting."}])
    expect(page.locator("#upload-list")).to_contain_text("agenda.txt")
    page.wait_for_function("() => document.querySelector('#upload-list').textContent"
                           ".match(/Ingesting|Ready|Refused|failed/)")
    added = Document.objects.get(team=team, original_name="agenda.txt")
    assert added.filing.collection_id == board.pk
    page.screenshot(path=str(shots / "library-filtered.png"), full_page=True)
    page.select_option("[data-testid=collection-filter]", "")  # all documents: as before
    expect(upload_into).to_have_value("")

    page.context.clear_cookies()
    _login(page, live_server, outsider_of_board.user)
    page.goto(f"{base}/documents/")
    expect(page.locator("#doc-rows tr")).to_have_count(1)
    expect(page.locator("#doc-rows")).not_to_contain_text("Board minutes")
    page.screenshot(path=str(shots / "library-member-without-access.png"), full_page=True)
    assert page.goto(f"{base}/documents/{secret.pk}/").status == 404
