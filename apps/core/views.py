from __future__ import annotations

from django.db import connection
from django.http import JsonResponse
from django.shortcuts import redirect, render


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
    """Liveness and readiness for load balancers and compose healthchecks."""
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        from workers.celery import app

        with app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        checks["broker"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["broker"] = f"error: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return JsonResponse({"status": "ok" if healthy else "error", **checks},
                        status=200 if healthy else 503)
