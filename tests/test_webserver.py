"""apps/core/webserver.py: web processes each listen on a socket of their own, on one port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from apps.core import webserver


def test_sockets_on_one_port_share_its_connections_and_a_taken_port_is_found():
    first = webserver.listening_socket("127.0.0.1", 0)
    port = first.getsockname()[1]
    second = webserver.listening_socket("127.0.0.1", port)
    clients = []
    try:
        with pytest.raises(OSError):
            webserver.check_free("127.0.0.1", port)  # another server: refused, not shared
        for _ in range(64):
            clients.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        accepted = []
        for sock in (first, second):
            sock.setblocking(False)
            count = 0
            while True:
                try:
                    conn, _ = sock.accept()
                except BlockingIOError:
                    break
                conn.close()
                count += 1
            accepted.append(count)
        # The kernel spreads them by address: each socket gets its part (not all to one).
        assert sum(accepted) == 64 and min(accepted) >= 12, accepted
    finally:
        for sock in (*clients, first, second):
            sock.close()
    webserver.check_free("127.0.0.1", port)  # free again once both are closed


def test_a_web_process_beats_and_stops_when_its_supervisor_is_gone():
    """Its event loop writes to the heartbeat pipe; once the supervisor's end closes, the
    process exits instead of holding the port with nobody to replace it."""
    port = _free_port()
    beat = webserver.Heartbeat()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "apps.settings_test"}
    command = [sys.executable, "-m", "apps.core.webserver", "--port", str(port)]
    proc = beat.start(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while beat.last is None and time.monotonic() < deadline:
            assert beat.overdue(60) is None
            time.sleep(0.2)
        assert beat.last is not None, "no heartbeat"
        beat.close()
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    webserver.check_free("127.0.0.1", port)  # the port is free again


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
