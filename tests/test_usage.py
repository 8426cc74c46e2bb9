"""The team usage page: figures summed by the database equal the jobs' own tokens, members
see their own, other teams never appear, and the CSV cannot run formulas."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import datetime, time, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.api.models import ApiKey, Batch, BatchItem
from apps.jobs.models import Job
from apps.jobs.services import JobProgress
from apps.teams.models import Role
from apps.teams.usage import Period, safe_cell, team_usage
from apps.teams.usage_chart import bar_chart, nice_ceiling
from tests.factories import JobFactory, MembershipFactory, TeamFactory
from tests.test_browser import page as browser_page  # noqa: F401 - a Playwright fixture
from workers.llm import get_backend
from workers.llm.rates import model_key

pytestmark = pytest.mark.django_db


def at(day, hour=12, minute=0):
    return datetime.combine(day, time(hour, minute), tzinfo=timezone.get_current_timezone())


def job(team, user, when, tokens_in, tokens_out, kind="word_stats", **fields):
    made = JobFactory(team=team, created_by=user, kind=kind, tokens_in=tokens_in,
                      tokens_out=tokens_out, **fields)
    Job.objects.filter(pk=made.pk).update(created_at=when)  # created_at is auto_now_add
    return made


def usage_url(team, **query):
    url = reverse("teams:usage", kwargs={"team_slug": team.slug})
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def csv_rows(response) -> list[dict]:
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode())))


@pytest.fixture
def today():
    return timezone.localdate()


@pytest.fixture
def history(team, owner, member, today):
    """Jobs of two people over ten days, two kinds, and a few outside a 7-day period."""
    made = []
    for n in range(10):
        day = today - timedelta(days=n)
        made.append(job(team, owner, at(day, 9), 100 + n, 10 + n, "qa_answer"))
        made.append(job(team, member, at(day, 15), 1000 * (n + 1), 7 * n, "writing_section"))
        if n % 3 == 0:
            made.append(job(team, member, at(day, 23, 59), 5, 1, "compress"))
    return made


def expected(jobs, period: Period, key) -> dict:
    sums = defaultdict(lambda: [0, 0, 0])
    for one in jobs:
        one.refresh_from_db()
        if period.start <= timezone.localtime(one.created_at).date() <= period.end:
            sums[key(one)][0] += 1
            sums[key(one)][1] += one.tokens_in
            sums[key(one)][2] += one.tokens_out
    return dict(sums)


def figures(rows) -> dict:
    return {row.key: [row.jobs, row.tokens_in, row.tokens_out] for row in rows if row.jobs}


def test_figures_equal_the_jobs_tokens_by_day_member_and_kind(team, history, today):
    period = Period.last(7, today)
    usage = team_usage(team, period)
    assert figures(usage.by_day) == expected(
        history, period, lambda j: timezone.localtime(j.created_at).date().isoformat())
    assert len(usage.by_day) == 7  # days without jobs are there too, at zero
    assert figures(usage.breakdowns["member"]) == expected(
        history, period, lambda j: str(j.created_by_id))
    assert figures(usage.breakdowns["kind"]) == expected(history, period, lambda j: j.kind)
    everything = expected(history, period, lambda j: "all")["all"]
    assert [usage.total.jobs, usage.total.tokens_in, usage.total.tokens_out] == everything
    # Three jobs of the 7th day before today and earlier are outside the period.
    assert usage.total.jobs == len(history) - 3 * 2 - 1


def test_a_chosen_range_includes_both_whole_days(team, owner, today):
    start, end = today - timedelta(days=20), today - timedelta(days=10)
    job(team, owner, at(start, 0, 0), 1, 0)
    job(team, owner, at(end, 23, 59), 10, 0)
    job(team, owner, at(end + timedelta(days=1), 0, 0), 100, 0)  # the day after
    job(team, owner, at(start, 0, 0) - timedelta(seconds=1), 1000, 0)  # the day before
    assert team_usage(team, Period(start, end)).total.tokens_in == 11


def test_the_page_shows_the_team_totals_to_an_admin(client, team, admin, history, today):
    client.force_login(admin)
    page = client.get(usage_url(team, days=7))
    body = page.content.decode()
    total = team_usage(team, Period.last(7, today)).total
    assert page.status_code == 200
    assert f'data-testid="total-in">{total.tokens_in:,}<' in body
    assert f'data-testid="total-out">{total.tokens_out:,}<' in body
    assert body.count('data-testid="chart-bar"') == 7
    assert "Tokens and jobs of everyone" in body


def test_csv_export_equals_the_page_figures(client, team, owner, history, today):
    client.force_login(owner)
    response = client.get(usage_url(team, days=30, format="csv"))
    rows = csv_rows(response)
    assert 'attachment; filename="usage-' in response["Content-Disposition"]
    usage = team_usage(team, Period.last(30, today))
    by = defaultdict(dict)
    for row in rows:
        by[row["breakdown"]][row["key"]] = [int(row["jobs"]), int(row["tokens_in"]),
                                            int(row["tokens_out"])]
    assert by["total"]["total"] == [usage.total.jobs, usage.total.tokens_in,
                                    usage.total.tokens_out]
    assert len(by["day"]) == 30
    kinds = expected(history, Period.last(30, today), lambda j: j.kind)
    assert by["kind"] == kinds


def test_a_member_sees_only_their_own_jobs(client, team, owner, member, history, today):
    client.force_login(member)
    rows = csv_rows(client.get(usage_url(team, days=90, format="csv")))
    mine = expected(history, Period.last(90, today), lambda j: j.created_by_id)
    total = next(row for row in rows if row["breakdown"] == "total")
    assert int(total["tokens_in"]) == mine[member.pk][1]
    assert {row["key"] for row in rows if row["breakdown"] == "member"} == {str(member.pk)}
    body = client.get(usage_url(team, days=90)).content.decode()
    assert owner.email not in body and (owner.name or owner.email) not in body
    assert "Your own tokens and jobs" in body


def test_another_teams_jobs_never_appear(client, team, owner, outsider, today):
    other = outsider.memberships.get().team
    job(team, owner, at(today), 3, 4)
    job(other, outsider, at(today), 999_999, 888_888)
    job(other, owner, at(today), 777_777, 1)  # even one started by our owner, elsewhere
    usage = team_usage(team, Period.last(7, today))
    assert (usage.total.tokens_in, usage.total.tokens_out) == (3, 4)
    client.force_login(outsider)
    assert client.get(usage_url(team)).status_code == 404
    assert client.get(usage_url(team, format="csv")).status_code == 404
    client.force_login(owner)
    assert client.get(usage_url(other)).status_code == 404


def test_api_keys_and_models_are_broken_down(team, owner, today):
    key = ApiKey.objects.create(team=team, name="Nightly import", prefix="sk_abc",
                                secret_hash="h1", scopes=["read", "write"])
    batch = Batch.objects.create(team=team, created_by=owner, api_key=key, kind="qa")
    for index, tokens in enumerate((40, 60)):
        item_job = job(team, owner, at(today), tokens, 1, "batch_item",
                       result={"model": "qwen2.5-7b"})
        BatchItem.objects.create(batch=batch, index=index, kind="qa", job=item_job)
    job(team, owner, at(today), 5, 0)
    usage = team_usage(team, Period.last(7, today))
    keys = {row.label: row.tokens_in for row in usage.breakdowns["api_key"]}
    assert keys == {"Nightly import (sk_abc…)": 100, "Web (no API key)": 5}
    models = {row.label: row.tokens_in for row in usage.breakdowns["model"]}
    assert models == {"qwen2.5-7b": 100, "not recorded": 5}


def test_the_model_is_recorded_as_a_job_counts_its_tokens(team, owner, today):
    running = job(team, owner, at(today), 0, 0, "qa_answer", status="running",
                  celery_task_id="t-1")
    JobProgress(running).add_tokens(70, 7)  # as every runner counts the model's tokens
    running.refresh_from_db()
    assert running.model == model_key(get_backend()) and running.tokens_in == 70
    models = {row.label: row.tokens_in
              for row in team_usage(team, Period.last(7, today)).breakdowns["model"]}
    assert models == {model_key(get_backend()): 70}


@pytest.mark.parametrize("name", ["=cmd|' /C calc'!A0", "+SUM(A1)", "-2+3", "@HYPERLINK(x)"])
def test_csv_cells_that_start_a_formula_are_escaped(client, team, owner, today, name):
    owner.name = name
    owner.save()
    key = ApiKey.objects.create(team=team, name=name, prefix="sk_f", secret_hash="hf",
                                scopes=["read"])
    batch = Batch.objects.create(team=team, api_key=key, kind="qa")
    BatchItem.objects.create(batch=batch, index=0, kind="qa",
                             job=job(team, owner, at(today), 1, 1, result={"model": name}))
    client.force_login(owner)
    text = client.get(usage_url(team, format="csv")).content.decode()
    cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
    assert name not in cells
    assert cells.count("'" + name) == 3  # the member's label, the model's key and label
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells)


def test_safe_cell_leaves_plain_values_alone():
    assert safe_cell("Ann") == "Ann" and safe_cell(12) == 12 and safe_cell("2026-01-02") == \
        "2026-01-02"
    assert safe_cell("=1+1") == "'=1+1" and safe_cell("\t=1") == "'\t=1"


def test_labels_are_escaped_on_the_page(client, team, owner, today):
    owner.name = "<script>alert(1)</script>"
    owner.save()
    job(team, owner, at(today), 1, 1, result={"model": "<img src=x onerror=alert(1)>"})
    client.force_login(owner)
    body = client.get(usage_url(team)).content.decode()
    assert "<script>alert(1)</script>" not in body and "<img src=x" not in body
    assert "&lt;script&gt;" in body


@pytest.mark.parametrize("query, message", [
    ({"start": "2026-03-10", "end": "2026-03-01"}, "The first date is after the second."),
    ({"start": "2026-03-10"}, "Give both dates, from and to."),
    ({"start": "2024-01-01", "end": "2026-01-01"}, "Choose at most 366 days"),
    ({"start": "yesterday", "end": "2026-01-01"}, "Enter a valid date."),
    ({"days": "5"}, "Select a valid choice."),
])
def test_a_bad_period_is_a_clear_message(client, team, owner, query, message):
    client.force_login(owner)
    page = client.get(usage_url(team, **query))
    assert page.status_code == 400
    assert message in page.content.decode()


def test_viewers_and_members_reach_the_page_admins_see_all(client, team, owner, today):
    job(team, owner, at(today), 50, 5)
    for role, sees_owner in [(Role.VIEWER, False), (Role.MEMBER, False), (Role.ADMIN, True)]:
        user = MembershipFactory(team=team, role=role).user
        client.force_login(user)
        rows = csv_rows(client.get(usage_url(team, format="csv")))
        total = next(row for row in rows if row["breakdown"] == "total")
        assert int(total["tokens_in"]) == (50 if sees_owner else 0)


def test_the_chart_bars_are_proportional_to_the_tokens(team, owner, today):
    job(team, owner, at(today), 300, 100)
    job(team, owner, at(today - timedelta(days=1)), 100, 0)
    chart = bar_chart(team_usage(team, Period.last(7, today)).by_day)
    assert nice_ceiling(400) == 500 and nice_ceiling(0) == 1 and nice_ceiling(2001) == 5000
    last, before = chart.bars[-1], chart.bars[-2]
    assert last.in_height == pytest.approx(3 * before.in_height)
    assert last.out_height == pytest.approx(before.in_height)
    assert chart.bars[0].in_height == 0 and chart.bars[0].out_height == 0
    assert last.out_y + last.out_height == pytest.approx(last.in_y)  # stacked
    assert "300 tokens in, 100 out, 1 jobs" in last.title


def test_the_settings_page_links_to_usage(client, team, member):
    client.force_login(member)
    body = client.get(reverse("teams:settings", kwargs={"team_slug": team.slug})).content
    assert usage_url(team).encode() in body


def test_a_new_team_has_an_empty_usage(client, owner, team):
    TeamFactory()
    client.force_login(owner)
    page = client.get(usage_url(team))
    assert page.status_code == 200
    assert 'data-testid="total-jobs">0<' in page.content.decode()
    assert "No jobs in this period." in page.content.decode()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_in_a_browser_the_figures_match_the_jobs(browser_page, live_server,  # noqa: F811
                                                  client, team, owner, member, outsider, today):
    from django.conf import settings
    from playwright.sync_api import expect

    made = [job(team, owner, at(today - timedelta(days=n)), 1000 * n + 7, 10 * n, "qa_answer")
            for n in range(5)]
    made.append(job(team, member, at(today), 123_456, 789, "writing_section"))
    job(team, owner, at(today - timedelta(days=40)), 50_000, 5)  # before the period
    job(outsider.memberships.get().team, outsider, at(today), 9_999_999, 1)  # another team
    page = browser_page
    client.force_login(owner)
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "url": live_server.url,
                               "value": client.cookies[settings.SESSION_COOKIE_NAME].value}])
    page.goto(live_server.url + usage_url(team, days=30))
    expect(page.get_by_test_id("total-in")).to_have_text(f"{sum(j.tokens_in for j in made):,}")
    expect(page.get_by_test_id("total-out")).to_have_text(f"{sum(j.tokens_out for j in made):,}")
    expect(page.get_by_test_id("total-jobs")).to_have_text(str(len(made)))
    expect(page.get_by_test_id("chart-bar")).to_have_count(30)
    kinds = page.get_by_test_id("usage-kind")
    expect(kinds.get_by_role("row", name="Write one section")).to_contain_text("123,456")
    with page.expect_download() as download:
        page.get_by_test_id("usage-csv").click()
    rows = list(csv.DictReader(io.StringIO(download.value.path().read_text("utf-8"))))
    total = next(row for row in rows if row["breakdown"] == "total")
    assert int(total["tokens_in"]) == sum(j.tokens_in for j in made)


def test_the_page_costs_the_same_queries_for_ten_jobs_or_two_hundred(client, team, owner,
                                                                     member, today):
    """Summed by the database (one grouped query per breakdown), not row by row."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(usage_url(team, days=90)).status_code == 200
        return len(captured)

    client.force_login(owner)
    for n in range(10):
        job(team, owner if n % 2 else member, at(today - timedelta(days=n)), n, n)
    few = queries()
    for n in range(190):
        job(team, member, at(today - timedelta(days=n % 80)), n, 1, kind=f"kind_{n % 7}",
            result={"model": f"m{n % 3}"})
    assert queries() == few <= 15  # 13 today: session, user, team, menus, 6 sums, key names


def test_days_are_the_installations_local_days(settings, team, owner):
    """A job at 23:30 in New York is that day's, though it is the next day in UTC."""
    settings.TIME_ZONE = "America/New_York"
    today = timezone.localdate()
    job(team, owner, at(today - timedelta(days=1), 23, 30), 5, 0)
    job(team, owner, at(today, 0, 30), 7, 0)
    days = {row.key: row.tokens_in for row in team_usage(team, Period.last(2, today)).by_day}
    assert days == {(today - timedelta(days=1)).isoformat(): 5, today.isoformat(): 7}
