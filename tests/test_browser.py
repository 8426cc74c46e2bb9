"""One real browser run: Playwright drives Debian's chromium through sign-up, a new team, its
first steps and the demo job (on the model status page), against the live server and a real
worker process."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.live_worker import LiveWorker

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def _chromium() -> str:
    path = shutil.which("chromium")
    if path:
        return path
    if os.geteuid() != 0:
        pytest.skip("Debian's chromium is not installed and this is not root: "
                    "`apt-get install chromium` to run the browser test")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env,
                   capture_output=True)
    path = shutil.which("chromium")
    if not path:
        pytest.skip("installing Debian's chromium did not provide /usr/bin/chromium")
    return path


@pytest.fixture
def page(monkeypatch):
    playwright_api = pytest.importorskip("playwright.sync_api")
    executable = _chromium()
    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes
    # are still plain synchronous calls.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        yield context.new_page()
        context.close()
        browser.close()


@pytest.fixture
def worker():
    from workers.celery import app

    with app.connection_for_write() as conn:
        conn.default_channel.client.flushdb()
    w = LiveWorker(env={"DEMO_JOB_STEP_DELAY": "0.1"}).start()
    yield w
    w.stop()


def test_sign_up_create_team_run_demo_job(page, live_server, worker, tmp_path):
    from playwright.sync_api import expect

    page.goto(live_server.url + "/accounts/signup/")
    page.fill("input[name=email]", "grace@example.com")
    page.fill("input[name=password1]", "a long enough passphrase")
    page.fill("input[name=password2]", "a long enough passphrase")
    page.get_by_role("button", name="Sign Up").click()
    expect(page.get_by_text("You are not in a team yet")).to_be_visible()

    page.get_by_role("link", name="Create a team").click()
    page.fill("input[name=name]", "Research desk")
    page.get_by_role("button", name="Create team").click()
    expect(page.get_by_role("heading", name="Team settings")).to_be_visible()
    expect(page.get_by_test_id("team-switcher")).to_contain_text("Research desk")

    # A new team's first screen leads to uploading, asking and writing, not to the demo.
    page.get_by_role("link", name="Overview").click()
    expect(page.get_by_test_id("first-steps")).to_be_visible()
    expect(page.get_by_role("link", name="Upload a document")).to_be_visible()
    expect(page.get_by_role("button", name="Count words")).to_have_count(0)
    page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)

    # The demo job lives on the model status page.
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("link", name="Language model status →").click()
    text = "\n\n".join(f"Paragraph {i}: the quick brown fox jumps." for i in range(20))
    page.fill("textarea[name=text]", text)
    page.get_by_role("button", name="Count words").click()
    expect(page.get_by_test_id("result-words")).to_have_text("120", timeout=60_000)
    page.screenshot(path=str(tmp_path / "job.png"), full_page=True)
    page.get_by_role("link", name="← All jobs").click()
    row = page.locator("tr[id^=job-]").first
    expect(row.locator(".badge")).to_have_text("Succeeded")
