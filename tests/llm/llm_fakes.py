"""Small local servers that misbehave on purpose: failures we cannot get from a healthy
server on demand (a server that never answers, a stream cut short, a 503).

Every server binds 127.0.0.1 on a free port, runs on a daemon thread, and is stopped by
the fixture that started it.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SilentServer:
    """Accepts connections and reads requests but never answers."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self.connections = 0
        self._open: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            self._open.append(conn)  # held open, unanswered, until stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for conn in self._open:
            conn.close()
        self._sock.close()


Route = Callable[["ScriptedHandler", dict[str, Any]], None]


class ScriptedHandler(BaseHTTPRequestHandler):
    server: ScriptedServer

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else {}
        path = self.path.split("?")[0]
        self.server.record(path, body)
        route = self.server.routes.get(path)
        if route is None:
            self.send_json(404, {"error": {"message": f"no route {path}"}})
            return
        route(self, body)

    do_GET = _handle
    do_POST = _handle

    def send_json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_raw(self, data: bytes) -> None:
        """Write bytes as they are (status line and headers included), then hang up."""
        self.wfile.write(data)
        self.wfile.flush()
        self.close_connection = True


class ScriptedServer(ThreadingHTTPServer):
    """An HTTP server whose answers are given per path by the test."""

    daemon_threads = True

    def __init__(self, routes: dict[str, Route]) -> None:
        super().__init__(("127.0.0.1", 0), ScriptedHandler)
        self.routes = routes
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def record(self, path: str, body: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append((path, body))

    def paths(self) -> list[str]:
        with self._lock:
            return [path for path, _ in self.requests]

    def track(self, seconds: float) -> None:
        """Count this request as in flight for ``seconds`` (to observe concurrency)."""
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        time.sleep(seconds)
        with self._lock:
            self.in_flight -= 1

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


# -- canned OpenAI-style payloads ------------------------------------------------------------


def models_payload(name: str = "fake-model", window: int | None = 1024) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": name, "object": "model"}
    if window:
        entry["max_model_len"] = window
    return {"object": "list", "data": [entry]}


def chat_payload(text: str, prompt_tokens: int = 5, completion_tokens: int = 3) -> dict[str, Any]:
    return {
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
    }


def sse_event(delta: str) -> bytes:
    chunk = {"choices": [{"index": 0, "delta": {"content": delta}, "finish_reason": None}]}
    return f"data: {json.dumps(chunk)}\n\n".encode()
