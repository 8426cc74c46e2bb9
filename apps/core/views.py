from __future__ import annotations

import functools
import threading
import time

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import redirect, render

from workers.events import redis_py_url


def home(request):
    """Signed-out: the landing page. Signed-in: the last team used, or the first one."""
    if not request.user.is_authenticated:
        return render(request, "core/landing.html")
    teams = request.user.teams.order_by("name")
    slug = request.session.get("team_slug")
    team = teams.filter(slug=slug).first() if slug else None
    team = team or teams.first()
    if team is None:
        return render(request, "core/welcome.html")
    return redirect("teams:dashboard", team_slug=team.slug)


def healthz(request):
    """Liveness: the process is up and answers. No I/O, so that a slow database or broker
    never gets a working web process restarted, and a probe costs next to nothing."""
    return JsonResponse({"status": "ok"})


def readyz(request):
    """Readiness: the database and the broker answer (checked at most every
    READINESS_TTL seconds per process). 503 with the failing part otherwise."""
    checks = readiness.get()
    ready = all(value == "ok" for value in checks.values())
    return JsonResponse({"status": "ok" if ready else "error", **checks},
                        status=200 if ready else 503)


def _database() -> None:
    with connection.cursor() as cursor:  # a pooled connection: no new Postgres session
        cursor.execute("SELECT 1")


@functools.cache
def _broker_client(url: str):
    import redis

    # One client (and connection pool) per process and URL, short timeouts: a probe must
    # answer quickly even when the broker does not.
    return redis.Redis.from_url(redis_py_url(url), socket_timeout=2, socket_connect_timeout=2)


def _broker() -> None:
    _broker_client(settings.CELERY_BROKER_URL).ping()


class Readiness:
    """The last readiness checks of this process, reused for `ttl` seconds: probes from
    several balancers, or a burst of them, cost one check per period, not one per probe."""

    def __init__(self, ttl: float, checks: dict):
        self.ttl, self.checks = ttl, checks
        self._lock = threading.Lock()
        self._last: tuple[float, dict[str, str]] | None = None

    def get(self) -> dict[str, str]:
        with self._lock:  # concurrent probes wait for the one check under way
            if self._last is None or time.monotonic() - self._last[0] >= self.ttl:
                self._last = (time.monotonic(), {name: _outcome(check)
                                                 for name, check in self.checks.items()})
            return self._last[1]

    def clear(self) -> None:
        self._last = None


def _outcome(check) -> str:
    try:
        check()
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return f"error: {type(exc).__name__}"
    return "ok"


READINESS_TTL = 2.0
readiness = Readiness(READINESS_TTL, {"database": _database, "broker": _broker})
