"""The web tier: pooled database connections, one web process per CPU (serve and compose)."""

from __future__ import annotations

import os

import pytest
import yaml
from django.db import connection

from apps.core.management.commands.serve import Command as Serve
from apps.stack import BASE_DIR


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_closed_connections_go_back_to_the_pool_not_away():
    """Django closes its connection at the end of each request; with the pool the next
    request gets an open Postgres session back (the same few backends), not a new one."""
    pids = []
    for _ in range(12):
        pids.append(_backend_pid())
        connection.close()  # what request_finished does
    # Without the pool: 12 backends. With it: the few the pool holds, taken in turn.
    assert len(set(pids)) <= 4, pids


def _web_workers() -> int:
    return Serve().create_parser("manage.py", "serve").parse_args([]).web_workers


def test_serve_runs_one_web_process_per_cpu_unless_told(monkeypatch):
    monkeypatch.delenv("WEB_WORKERS", raising=False)
    assert _web_workers() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("WEB_WORKERS", "3")
    assert _web_workers() == 3


def test_compose_runs_one_web_process_per_cpu_of_the_container():
    web = yaml.safe_load((BASE_DIR / "compose.yaml").read_text())["services"]["web"]
    assert "--workers $${WEB_WORKERS:-$$(nproc)}" in web["command"][-1]
    assert "/readyz" in " ".join(web["healthcheck"]["test"])
