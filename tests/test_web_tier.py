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


def _thread_hops(handler, path: str) -> tuple[int, int]:
    """(status, sync_to_async calls) for one GET of ``path`` through ``handler``."""
    from asgiref import sync
    from asgiref.testing import ApplicationCommunicator

    calls = 0
    original = sync.SyncToAsync.__call__

    async def counted(self, *args, **kwargs):
        nonlocal calls
        calls += 1
        return await original(self, *args, **kwargs)

    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
             "query_string": b"", "headers": [(b"host", b"localhost")], "scheme": "https",
             "server": ("localhost", 443), "client": ("127.0.0.1", 5000), "root_path": "",
             "http_version": "1.1", "asgi": {"version": "3.0"}}

    async def run():
        app = ApplicationCommunicator(handler, scope)
        await app.send_input({"type": "http.request", "body": b""})
        start = await app.receive_output(30)
        await app.receive_output(30)
        return start["status"]

    sync.SyncToAsync.__call__ = counted
    try:
        status = sync.async_to_sync(run)()
    finally:
        sync.SyncToAsync.__call__ = original
    return status, calls


@pytest.mark.django_db(transaction=True)
def test_a_request_crosses_to_a_thread_once_not_once_per_middleware():
    """Django's async chain hops to a thread and back for each MiddlewareMixin's
    process_request and process_response; the app's handler runs the chain in one hop."""
    from django.core.handlers.asgi import ASGIHandler

    from apps.core.handler import SyncChainASGIHandler

    status, hops = _thread_hops(SyncChainASGIHandler(), "/healthz")
    django_status, django_hops = _thread_hops(ASGIHandler(), "/healthz")
    assert status == django_status == 200
    assert hops <= 3 < 8 <= django_hops, (hops, django_hops)  # + response.close
