"""`make run`'s server keeps its workers: a worker that exits (a broker outage can make
Celery exit) is started again while the web keeps serving; one that keeps dying stops the
server with a message instead of looping for ever."""

from __future__ import annotations

import os
import re
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


def _env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "apps.settings_test",
        "DATABASE_URL": live_worker.test_database_url(),
        "REDIS_URL": settings.CELERY_BROKER_URL,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    """`manage.py <args>` in a session of its own, its output kept."""
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        env=env,
        cwd=stack.BASE_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


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
    env = _env(WORKER_CONCURRENCY="1", INTERACTIVE_WORKER_CONCURRENCY="0")
    proc = _start(["serve", "--port", str(port), "--web-workers", "1"], env)
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


def _dead(process: psutil.Process) -> bool:
    """Exited (a zombie its parent has not reaped yet has closed its sockets too)."""
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


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
    env = _env()
    command = ["serve", "--no-worker", "--port", str(port), "--web-workers", "2"]
    proc = _start(command, env)
    try:
        serve = psutil.Process(proc.pid)
        _wait(lambda: _up(port), 120)
        first, other = _wait(lambda: len(_web_processes(serve)) == 2 and _web_processes(serve), 60)
        second = subprocess.run(
            [sys.executable, "manage.py", *command],
            env=env,
            cwd=stack.BASE_DIR,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode != 0 and f"{port}" in second.stderr
        first.kill()
        # Until the kernel has closed its socket, a connection may still be queued on it
        # and reset when it closes; from then on the other process alone is given them.
        _wait(lambda: _dead(first), 30)
        assert all(_up(port) for _ in range(5))  # the other process answers meanwhile
        _wait(lambda: any(p.pid not in (first.pid, other.pid) for p in _web_processes(serve)), 60)
        _wait(lambda: _up(port), 60)
        assert proc.poll() is None
    finally:
        out = _stop(proc)
    assert "A web process exited" in out and "starting it again" in out


def _ask(conn: socket.socket) -> int:
    """GET /healthz on an open keep-alive connection; the status."""
    conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _length(data):
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return int(data.split()[1])


def _length(data: bytes) -> int:
    found = re.search(rb"content-length: *(\d+)", data.partition(b"\r\n\r\n")[0], re.I)
    return int(found.group(1)) if found else 0


def _connection_to(process: psutil.Process, port: int) -> socket.socket:
    """A keep-alive connection that `process` accepted: the kernel picks a socket by the
    client's address, so connect until one lands there."""
    for _ in range(64):
        conn = socket.create_connection(("127.0.0.1", port), timeout=10)
        assert _ask(conn) == 200  # accepted by now, by one process or the other
        mine = conn.getsockname()[1]
        if any(c.raddr and c.raddr.port == mine for c in process.net_connections("tcp")):
            return conn
        conn.close()
    raise AssertionError(f"no connection reached {process.pid}")


def test_a_hung_web_process_is_replaced_and_healthy_ones_are_not():
    """A web process whose event loop stops (SIGSTOP: no heartbeat, no exit) is killed and
    started again while the other answers on its connection; processes that answer requests
    are left alone for longer than the timeout."""
    timeout = 5
    port = _free_port()
    # --web-only, as compose runs it: no workers, no migration (the test database has it).
    command = ["serve", "--web-only", "--port", str(port), "--web-workers", "2"]
    proc = _start(command, _env(WEB_HEARTBEAT_TIMEOUT_S=str(timeout)))
    first = None
    try:
        serve = psutil.Process(proc.pid)
        _wait(lambda: _up(port), 120)
        first, other = _wait(lambda: len(_web_processes(serve)) == 2 and _web_processes(serve), 60)
        assert len(serve.children()) == 2  # the web processes alone
        on_first, on_other = _connection_to(first, port), _connection_to(other, port)
        # Both serve requests for twice the timeout: neither is taken for hung.
        end = time.monotonic() + 2 * timeout
        while time.monotonic() < end:
            assert _ask(on_first) == 200 and _ask(on_other) == 200
            time.sleep(0.2)
        assert {p.pid for p in _web_processes(serve)} == {first.pid, other.pid}
        on_first.close()

        first.suspend()  # SIGSTOP: its loop stops beating; the process does not exit

        def replaced():
            assert _ask(on_other) == 200  # the other answers meanwhile
            return [p for p in _web_processes(serve) if p.pid not in (first.pid, other.pid)]

        _wait(replaced, 60)
        assert not first.is_running() and other.is_running()  # killed; the other kept
        _wait(lambda: _up(port), 60)
        assert proc.poll() is None
        on_other.close()
    finally:
        if first is not None and first.is_running():
            first.resume()  # serve stops it with the others
        out = _stop(proc)
    hung = f"A web process (pid {first.pid}) sent no heartbeat"
    assert hung in out and "starting it again" in out, out
    assert out.count("sent no heartbeat") == 1, out  # the healthy process never
