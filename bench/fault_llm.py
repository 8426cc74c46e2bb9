"""The model for the fault benchmark, behind a gate it can close (bench/faults.py).

`StubLLM` is an OpenAI-compatible server that streams a fixed answer at a fixed cost, so
that a thousand QA items fit on two cores while the app's own work (retrieval, grounding,
the rows, the events) is real. `Gate` is a TCP proxy in front of any OpenAI-compatible
server, the stub or a real one: closing it is "the LLM server is down" as clients see it,
connections refused and streams cut.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STUB_ANSWER = ("The documents say the engine under workers imports no Django, and the "
               "services call it; the rules are checked by a test.")



class StubLLM(ThreadingHTTPServer):
    """An OpenAI-compatible server that answers STUB_ANSWER at `token_delay` seconds a word,
    streamed word by word or whole at the end: the shape and the wait of a real server's
    answer, without its CPU."""

    daemon_threads = True
    model, window = "bench-stub", 8192

    def __init__(self, token_delay: float = 0.01):
        super().__init__(("127.0.0.1", 0), _StubHandler)
        self.token_delay = token_delay
        threading.Thread(target=self.serve_forever, daemon=True, name="stub-llm").start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request, client_address) -> None:
        """A client gone mid-answer (the gate closed) is expected; anything else is not."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _StubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # one line per request would drown the bench
        pass

    def _json(self, data: dict) -> None:
        body = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._json({"object": "list", "data": [
            {"id": self.server.model, "object": "model", "max_model_len": self.server.window}]})

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        words = STUB_ANSWER.split(" ")[: max(1, int(body.get("max_tokens") or 64))]
        usage = {"prompt_tokens": 100, "completion_tokens": len(words), "total_tokens": 100}
        if not body.get("stream"):
            # The same words take the same time unstreamed: a server writes them either way.
            time.sleep(self.server.token_delay * len(words))
            self._json({"choices": [{"index": 0, "finish_reason": "stop", "message": {
                "role": "assistant", "content": " ".join(words)}}], "usage": usage})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        for i, word in enumerate(words):
            time.sleep(self.server.token_delay)
            delta = {"content": (" " if i else "") + word}
            self._event({"choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        self._event({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                     "usage": usage})
        self.wfile.write(b"data: [DONE]\n\n")
        self.close_connection = True

    def _event(self, data: dict) -> None:
        self.wfile.write(b"data: " + json.dumps(data).encode() + b"\n\n")
        self.wfile.flush()


class Gate:
    """A TCP proxy to the model's server on a port of its own. `down(seconds)` closes the
    port and cuts the connections through it: clients get 'connection refused', as from
    a server that crashed, until it opens again on the same port."""

    def __init__(self, upstream: str):
        from urllib.parse import urlsplit

        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
        self.scheme, self.path = parts.scheme, parts.path.rstrip("/")
        self.loop = asyncio.new_event_loop()
        self.server: asyncio.base_events.Server | None = None
        self.port = 0
        self.writers: set[asyncio.StreamWriter] = set()
        threading.Thread(target=self.loop.run_forever, daemon=True, name="llm-gate").start()
        self._call(self._open())

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{self.path}"

    def _call(self, coro, timeout: float = 10):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _open(self) -> None:
        self.server = await asyncio.start_server(self._pipe, "127.0.0.1", self.port,
                                                 reuse_address=True)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        self.server.close()
        for writer in list(self.writers):
            writer.transport.abort()
        await self.server.wait_closed()

    async def _pipe(self, reader, writer) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self.writers.update((writer, up_writer))

        async def copy(src, dst) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                if dst.transport is not None:
                    dst.transport.abort()

        await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))
        self.writers.difference_update((writer, up_writer))

    def down(self, seconds: float) -> None:
        self._call(self._close())
        time.sleep(seconds)
        self._call(self._open())

    def close(self) -> None:
        self._call(self._close())
        self.loop.call_soon_threadsafe(self.loop.stop)


