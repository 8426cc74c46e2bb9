"""A CSV batch in a real browser (Playwright + Debian's chromium, live server, a real worker
with the embedded model): upload, preview, run, watch it finish, download the results.
Screenshots of the list, the form and the finished batch at 1280 and 390 px wide go to
BATCH_SCREENSHOTS (default: the test's tmp folder)."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest
from django.urls import reverse

from apps.api.models import Batch
from tests.api.conftest import ready_document
from tests.factories import MembershipFactory
from tests.live_worker import LiveWorker
from tests.test_browser import page  # noqa: F401 - the Playwright page fixture
from tests.test_writing_browser import _login

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]
WIDTHS = (1280, 390)


@pytest.fixture
def worker():
    from workers.celery import app

    with app.connection_for_write() as conn:
        conn.default_channel.client.flushdb()
    w = LiveWorker(env={"LLM_TORCH_THREADS": "1"}, concurrency=1).start()
    yield w
    w.stop()


def _shots(page, folder: Path, name: str) -> None:  # noqa: F811
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(folder / f"batch-{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def test_a_csv_batch_from_upload_to_downloaded_results(page, live_server, worker,  # noqa: F811
                                                       tmp_path):
    from playwright.sync_api import expect

    shots = Path(os.environ.get("BATCH_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    membership = MembershipFactory()
    team = membership.team
    document = ready_document(team, title="Vellmar Point")
    _login(page, live_server, membership.user)
    page.goto(live_server.url + reverse("teams:dashboard", kwargs={"team_slug": team.slug}))
    page.get_by_role("link", name="Batches").click()
    expect(page.get_by_role("heading", name="Batches", exact=True)).to_be_visible()
    _shots(page, shots, "list-empty")

    questions = tmp_path / "questions.csv"
    questions.write_text("question,document\nWho is the lighthouse keeper?,Vellmar Point\n"
                         "=cmd|' /C calc'!A0 What colour is the tower painted?,\n")
    page.set_input_files("input[name=file]", str(questions))
    page.get_by_label("Vellmar Point").check()
    page.select_option("select[name=strategy]", "full")
    page.fill("input[name=answer_tokens]", "24")
    page.get_by_role("button", name="Preview").click()
    # The web process's first count loads the embedded model's tokenizer (~15 s on 2 cores).
    expect(page.get_by_test_id("preview-items")).to_have_text("2 items", timeout=120_000)
    expect(page.get_by_test_id("batch-estimate")).to_contain_text("Tokens")
    assert not Batch.objects.exists()  # the preview ran nothing
    _shots(page, shots, "form")

    page.get_by_role("button", name="Run batch").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Batch #")
    _shots(page, shots, "running")  # queued or running: the live part polls
    expect(page.get_by_test_id("batch-status")).to_have_text("Succeeded", timeout=240_000)
    expect(page.locator("#batch-progress")).not_to_have_attribute("hx-trigger", "every 2s")
    rows = page.locator("[data-testid=results] tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first.locator(".answer")).not_to_be_empty()
    _shots(page, shots, "finished")

    with page.expect_download() as download:
        page.get_by_role("link", name="CSV", exact=True).click()
    path = download.value.path()
    results = list(csv.DictReader(io.StringIO(Path(path).read_text(encoding="utf-8-sig"))))
    assert [r["status"] for r in results] == ["succeeded", "succeeded"]
    assert all(r["output"].strip() for r in results)
    assert results[0]["documents"] == str(document.pk)
    assert results[1]["input"].startswith("'=cmd")  # kept as text, escaped for spreadsheets
    assert all(int(r["prompt_tokens"]) > 0 and int(r["completion_tokens"]) > 0 for r in results)

    page.goto(live_server.url + reverse("batches:list", kwargs={"team_slug": team.slug}))
    expect(page.locator("#batch-list")).to_contain_text("Succeeded")
    _shots(page, shots, "list")
