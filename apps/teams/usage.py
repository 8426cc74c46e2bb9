"""A team's usage for a period: tokens in/out and job counts by day, member, API key, job
kind and model, summed by the database (one grouped query per breakdown).

Every query starts from the team (`team.jobs`), so another team's jobs can never appear;
`user` narrows it to the jobs that person started (members see their own only).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db.models import Count, F, OuterRef, Subquery, Sum, TextField, Value
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce, NullIf, TruncDate
from django.utils import timezone

from apps.api.models import BatchItem
from apps.jobs.kinds import get_kind

# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
LONGEST_PERIOD_DAYS = 366
NOT_RECORDED = "not recorded"


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive

    @classmethod
    def last(cls, days: int, today: date | None = None) -> Period:
        today = today or timezone.localdate()
        return cls(today - timedelta(days=days - 1), today)

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    def bounds(self) -> tuple[datetime, datetime]:
        """[start, end) as aware datetimes in the installation's time zone."""
        tz = timezone.get_current_timezone()
        return (datetime.combine(self.start, time.min, tzinfo=tz),
                datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=tz))


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    jobs: int = 0
    tokens_in: int = 0
    tokens_out: int = 0

    @property
    def tokens(self) -> int:
        return self.tokens_in + self.tokens_out


@dataclass
class Usage:
    period: Period
    everyone: bool  # False: only the asking user's own jobs
    total: Row
    by_day: list[Row]
    breakdowns: dict[str, list[Row]] = field(default_factory=dict)


# The breakdowns below the chart, in page order: key -> (section title, column heading).
BREAKDOWNS = {"member": ("By member", "Member"), "api_key": ("By API key", "API key"),
              "kind": ("By job kind", "Job kind"), "model": ("By model", "Model")}


def period_jobs(team, period: Period, user=None):
    start, end = period.bounds()
    jobs = team.jobs.filter(created_at__gte=start, created_at__lt=end)
    return jobs.filter(created_by=user) if user is not None else jobs


def _sums(jobs, **groups) -> list[dict]:
    """One GROUP BY query: the job count and token sums per value of `groups`."""
    return list(jobs.annotate(**groups).values(*groups)
                .annotate(n=Count("id"), t_in=Sum("tokens_in"), t_out=Sum("tokens_out"))
                .order_by(*groups))


def _row(key, label, sums: dict) -> Row:
    return Row(str(key), label, sums["n"], sums["t_in"] or 0, sums["t_out"] or 0)


def _by_day(jobs, period: Period) -> list[Row]:
    tz = timezone.get_current_timezone()
    found = {s["g_day"]: s for s in _sums(jobs, g_day=TruncDate("created_at", tzinfo=tz))}
    empty = {"n": 0, "t_in": 0, "t_out": 0}
    return [_row(day.isoformat(), day.isoformat(), found.get(day, empty)) for day in period.days]


def _by_member(jobs) -> list[Row]:
    sums = _sums(jobs, g_id=F("created_by"), g_email=F("created_by__email"),
                 g_name=F("created_by__name"))
    return [_row(s["g_id"] or "", s["g_name"] or s["g_email"] or "No one (system or removed)",
                 s) for s in sums]


def _by_api_key(jobs, team) -> list[Row]:
    # An API item's job is reached from its batch item (the job keeps no reverse name).
    key_of_job = BatchItem.objects.filter(job=OuterRef("pk")).values("batch__api_key")[:1]
    sums = _sums(jobs, g_key=Subquery(key_of_job))
    keys = {key.pk: key for key in team.api_keys.filter(pk__in=[s["g_key"] for s in sums])}
    rows = []
    for s in sums:
        key = keys.get(s["g_key"])
        label = f"{key.name} ({key.prefix}…)" if key else "Web (no API key)"
        rows.append(_row(s["g_key"] or "", label, s))
    return rows


def _kind_label(name: str) -> str:
    try:
        return get_kind(name).label
    except KeyError:
        return name


def _by_kind(jobs) -> list[Row]:
    return [_row(s["g_kind"], _kind_label(s["g_kind"]), s) for s in _sums(jobs, g_kind=F("kind"))]


def _by_model(jobs) -> list[Row]:
    # The model that wrote the job's tokens (Job.model, set as they are counted); jobs from
    # before that field have it in their result at most (the model check's).
    sums = _sums(jobs, g_model=Coalesce(NullIf(F("model"), Value("")), KT("result__model"),
                                        Value(""), output_field=TextField()))
    return [_row(s["g_model"], s["g_model"] or NOT_RECORDED, s) for s in sums]


def _biggest_first(rows: list[Row]) -> list[Row]:
    return sorted(rows, key=lambda row: (-row.tokens, -row.jobs, row.label))


def team_usage(team, period: Period, user=None) -> Usage:
    """The usage of `team` in `period`; of `user`'s own jobs only when a user is given."""
    jobs = period_jobs(team, period, user)
    total = jobs.aggregate(n=Count("id"), t_in=Sum("tokens_in"), t_out=Sum("tokens_out"))
    breakdowns = {"member": _by_member(jobs), "api_key": _by_api_key(jobs, team),
                  "kind": _by_kind(jobs), "model": _by_model(jobs)}
    return Usage(period, user is None, _row("total", "Total", total), _by_day(jobs, period),
                 {name: _biggest_first(rows) for name, rows in breakdowns.items()})


def safe_cell(value):
    """A CSV cell a spreadsheet shows as text: formula starts get a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def usage_csv(usage: Usage) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["breakdown", "key", "label", "jobs", "tokens_in", "tokens_out"])
    sections = [("total", [usage.total]), ("day", usage.by_day), *usage.breakdowns.items()]
    for name, rows in sections:
        for row in rows:
            writer.writerow([safe_cell(cell) for cell in
                             (name, row.key, row.label, row.jobs, row.tokens_in, row.tokens_out)])
    return out.getvalue()
