"""`make run`'s server keeps its workers: a worker that exits (a broker outage can make
Celery exit) is started again while the web keeps serving; one that keeps dying stops the
server with a message instead of looping for ever."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import psutil
import pytest
from django.conf import settings

from apps import stack
from tests import live_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _control_workers(serve: psutil.Process) -> list[psutil.Process]:
    found = []
    for child in serve.children():
        try:  # the killed worker is a zombie until serve reaps it: no command line to read
            if "control@%h" in " ".join(child.cmdline()):
                found.append(child)
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            pass
    return found


def _wait(test, seconds: float):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = test()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError("timed out")


def test_a_worker_that_exits_is_started_again_and_the_web_keeps_serving():
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "apps.settings_test",
        "DATABASE_URL": live_worker.test_database_url(),
        "REDIS_URL": settings.CELERY_BROKER_URL,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "WORKER_CONCURRENCY": "1",
        "INTERACTIVE_WORKER_CONCURRENCY": "0",
        "PYTHONUNBUFFERED": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port), "--web-workers", "1"],
        env=env,
        cwd=stack.BASE_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        serve = psutil.Process(proc.pid)
        _wait(lambda: _up(port), 120)
        first = _wait(lambda: _control_workers(serve), 60)[0]
        first.kill()  # as a crash would
        second = _wait(lambda: [p for p in _control_workers(serve) if p.pid != first.pid], 30)
        assert second and proc.poll() is None
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    finally:
        out = _stop(proc)
    assert "A worker exited" in out and "starting it again" in out


def _stop(proc: subprocess.Popen) -> str:
    """Ctrl-C to serve; its output."""
    proc.send_signal(signal.SIGINT)
    try:
        return proc.communicate(timeout=60)[0]
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.communicate()[0]


def _up(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _web_processes(serve: psutil.Process) -> list[psutil.Process]:
    found = []
    for child in serve.children():
        try:
            if "apps.core.webserver" in child.cmdline():
                found.append(child)
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            pass
    return found


def test_web_processes_each_listen_and_one_that_exits_is_started_again():
    """One socket per web process on the same port; a second server on a taken port is
    refused instead of sharing it; a web process that dies is replaced while the other
    keeps answering."""
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "apps.settings_test",
        "DATABASE_URL": live_worker.test_database_url(),
        "REDIS_URL": settings.CELERY_BROKER_URL,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "PYTHONUNBUFFERED": "1",
    }
    command = [
        sys.executable,
        "manage.py",
        "serve",
        "--no-worker",
        "--port",
        str(port),
        "--web-workers",
        "2",
    ]
    proc = subprocess.Popen(
        command,
        env=env,
        cwd=stack.BASE_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        serve = psutil.Process(proc.pid)
        _wait(lambda: _up(port), 120)
        first, other = _wait(lambda: len(_web_processes(serve)) == 2 and _web_processes(serve), 60)
        second = subprocess.run(
            command, env=env, cwd=stack.BASE_DIR, capture_output=True, text=True, timeout=120
        )
        assert second.returncode != 0 and f"{port}" in second.stderr
        first.kill()
        assert all(_up(port) for _ in range(5))  # the other process answers meanwhile
        _wait(lambda: any(p.pid not in (first.pid, other.pid) for p in _web_processes(serve)), 60)
        _wait(lambda: _up(port), 60)
        assert proc.poll() is None
    finally:
        out = _stop(proc)
    assert "A web process exited" in out and "starting it again" in out
