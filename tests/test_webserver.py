"""apps/core/webserver.py: web processes each listen on a socket of their own, on one port."""

from __future__ import annotations

import socket

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
