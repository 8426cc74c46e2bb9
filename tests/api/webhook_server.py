"""A local HTTP(S) server that records webhook deliveries (and can fail the first ones), or
answers like a hostile receiver: a slow drip, an endless body, a redirect."""

from __future__ import annotations

import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WebhookServer:
    """`drip`: seconds between the bytes of a status line that never ends; `body_bytes`: the
    size of a 200 answer's body (sent until the client stops reading); `redirect_to`: a URL
    that every request is sent to with a 307."""

    def __init__(self, fail_first: int = 0, drip: float = 0.0, body_bytes: int = 0,
                 redirect_to: str = "", tls: tuple[str, str] | None = None):
        self.received: list[dict] = []
        self.server_names: list[str | None] = []  # SNI of each TLS handshake
        self.fail_first = fail_first
        self.sent_bytes = 0  # of an answer's body, as far as the client took it
        self.done = threading.Event()  # a handler has finished its answer (or given up)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.received.append({"headers": dict(self.headers), "body": body,
                                        "json": json.loads(body)})
                try:
                    self._answer()
                except OSError:  # the client hung up: what a hostile server expects
                    pass
                finally:
                    server.done.set()

            def _answer(self):
                if drip:
                    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(drip)
                elif redirect_to:
                    self.send_response(307)
                    self.send_header("Location", redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif body_bytes:
                    self.send_response(200)
                    self.send_header("Content-Length", str(body_bytes))
                    self.end_headers()
                    block = b"x" * 65536
                    while server.sent_bytes < body_bytes:
                        self.wfile.write(block)
                        server.sent_bytes += len(block)
                else:
                    failing = len(server.received) <= server.fail_first
                    self.send_response(500 if failing else 204)
                    self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        if tls:  # (certificate file, key file)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            context.sni_callback = lambda sock, name, ctx: self.server_names.append(name)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
            self.url = f"https://127.0.0.1:{self.port}/hook"

    def __enter__(self) -> WebhookServer:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
