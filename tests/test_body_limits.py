"""Request-body limits at the edge (apps/core/bodylimit.py) against a real uvicorn server.

The server runs apps.asgi:application on a loopback port with the test settings and test
database. Hostile bodies are sent over a raw socket so the test controls every byte: a
chunked body of 2 GB from a generator (no Content-Length), a declared 100 MB JSON body, a
chunked upload past the file limit. Each is answered 413 after little was sent, nothing
past the limit is spooled (the server's written bytes and memory stay flat), and the
server keeps serving."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.conf import settings as django_settings
from django.test import Client

from apps import stack
from apps.api import keys
from apps.api.models import Scope
from apps.core.bodylimit import BodyLimit
from tests import live_worker
from tests.test_browser import page  # noqa: F401 - the Playwright page fixture

pytestmark = pytest.mark.django_db(transaction=True)
MB = 1024 * 1024
REQUEST_MAX = 1 * MB  # the server's limits, small so that the tests stay quick
DOCUMENT_MAX = 2 * MB


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, tmp: Path):
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tmp / "uvicorn.log"
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "apps.settings_test",
               "DATABASE_URL": live_worker.test_database_url(),
               "REDIS_URL": django_settings.REDIS_URL,
               "MEDIA_ROOT": str(django_settings.MEDIA_ROOT), "TMPDIR": str(tmp),
               "REQUEST_MAX_BYTES": str(REQUEST_MAX), "DOCUMENT_MAX_BYTES": str(DOCUMENT_MAX),
               "API_THROTTLE_RATE": "", "PYTHONUNBUFFERED": "1"}
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "apps.asgi:application", "--host",
                 "127.0.0.1", "--port", str(self.port), "--log-level", "warning"],
                env=env, cwd=stack.BASE_DIR, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if httpx.get(self.base + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError("uvicorn did not start:\n" + self.log.read_text())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def usage(self) -> tuple[int, int]:
        """(resident memory, bytes written to files so far) of the server process."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        rss = int(next(line.split()[1] for line in status.splitlines()
                       if line.startswith("VmRSS:"))) * 1024
        io = dict(line.split(": ") for line in
                  Path(f"/proc/{self.proc.pid}/io").read_text().splitlines())
        return rss, int(io["wchar"])

    def serves(self) -> bool:
        return httpx.get(self.base + "/healthz", timeout=10).status_code == 200


@pytest.fixture
def server(tmp_path):
    running = Server(tmp_path)
    yield running
    running.stop()


def _status_and_body(sock: socket.socket, timeout: float = 10) -> tuple[int, bytes]:
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    head, _, body = data.partition(b"\r\n\r\n")
    return (int(head.split(b" ", 2)[1]) if head else 0), body  # 0: no answer came


def send_streaming(port: int, path: str, chunks, headers: dict[str, str],
                   chunked: bool = True) -> tuple[int, bytes, int, float]:
    """Send a request whose body comes from `chunks`, stopping as soon as the server
    answers (or closes). Returns (status, response body, body bytes sent, seconds)."""
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}",
             *(f"{k}: {v}" for k, v in headers.items())]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    started, sent = time.monotonic(), 0
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        if headers.get("Expect") == "100-continue":  # as curl does: wait for the go-ahead
            select.select([sock], [], [], 5)
        for chunk in chunks:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" if chunked else chunk
            try:
                sock.sendall(frame)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        else:
            if chunked:
                sock.sendall(b"0\r\n\r\n")  # the whole body went: end it
        status, body = _status_and_body(sock)
    return status, body, sent, time.monotonic() - started


def endless(total: int, size: int = 64 * 1024):
    """`total` bytes of body, generated as they are sent (never held at once)."""
    block = b"x" * size
    for _ in range(total // size):
        yield block


def test_a_chunked_body_of_2_gb_is_refused_at_the_limit_and_the_server_keeps_serving(server):
    rss_before, written_before = server.usage()
    status, body, sent, seconds = send_streaming(
        server.port, "/accounts/login/", endless(2 * 1024 * MB),
        {"Content-Type": "application/octet-stream"})
    print(f"2 GB chunked: {status} after {sent / MB:.1f} MB sent, {seconds:.2f} s")
    assert status == 413
    assert b"REQUEST_MAX_BYTES" in body and b"larger than 1.0 MB" in body
    # Refused once the limit passed: what was sent is the limit plus the socket buffers.
    assert sent < 64 * MB, f"{sent / MB:.0f} MB sent before the answer"
    assert seconds < 30
    rss_after, written_after = server.usage()
    assert written_after - written_before < REQUEST_MAX  # nothing spooled to disk
    assert rss_after - rss_before < 64 * MB  # nor held in memory
    assert server.serves()


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
def test_a_json_body_of_100_mb_is_refused(server, chunked):
    headers = {"Content-Type": "application/json", "Authorization": "Bearer sk_live_nope"}
    if not chunked:
        headers.update({"Content-Length": str(100 * MB), "Expect": "100-continue"})
    status, body, sent, seconds = send_streaming(
        server.port, "/api/v1/teams/any/batches/",
        (b'{"kind": "qa", "questions": ["' if i == 0 else b"q" * (64 * 1024)
         for i in range(100 * 16)), headers, chunked=chunked)
    print(f"100 MB JSON ({'chunked' if chunked else 'declared'}): {status} after "
          f"{sent / MB:.1f} MB sent, {seconds:.2f} s")
    assert status == 413
    assert "API_JSON_MAX_BYTES" in json.loads(body)["detail"]
    # A declared length is refused before the body is read: nothing needed sending at all
    # (the 413 comes instead of "100 Continue").
    assert sent == 0 if not chunked else sent < 64 * MB
    assert seconds < 30
    assert server.serves()


def test_a_normal_upload_works_and_a_chunked_one_past_the_file_limit_is_413(server, team,
                                                                             owner):
    token = keys.create_key(team, owner, "edge", [Scope.READ, Scope.WRITE])[1]
    address = f"/api/v1/teams/{team.slug}/documents/"
    response = httpx.post(server.base + address, headers={"Authorization": f"Bearer {token}"},
                          files={"file": ("note.txt", b"The harbour master is Ines Duarte.\n")},
                          timeout=30)
    assert response.status_code == 201, response.text
    assert response.json()["title"] == "note"

    _, written_before = server.usage()
    boundary = "edge-boundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"big.txt\"\r\nContent-Type: text/plain\r\n\r\n").encode()
    status, body, sent, seconds = send_streaming(
        server.port, address, [head, *endless(500 * MB)],
        {"Authorization": f"Bearer {token}",
         "Content-Type": f"multipart/form-data; boundary={boundary}"})
    print(f"500 MB chunked upload: {status} after {sent / MB:.1f} MB sent, {seconds:.2f} s")
    assert status == 413 and "DOCUMENT_MAX_BYTES" in json.loads(body)["detail"]
    assert sent < 64 * MB
    _, written_after = server.usage()
    # At most the allowed file was spooled (Django rolls bodies over 5 MB to disk).
    assert written_after - written_before < DOCUMENT_MAX + MB
    assert server.serves()


def _session(user) -> str:
    """A real session of `user` in the database the server reads."""
    client = Client()
    client.force_login(user)
    return client.cookies[django_settings.SESSION_COOKIE_NAME].value


def _multipart(field: str, name: str, boundary: str = "edge-boundary") -> tuple[bytes, bytes]:
    """The parts of a multipart body around one file's bytes: (head, tail)."""
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
            f"filename=\"{name}\"\r\nContent-Type: text/plain\r\n\r\n").encode()
    return head, f"\r\n--{boundary}--\r\n".encode()


def _text(size: int, seed: str) -> bytes:
    line = f"{seed}: the harbour master keeps the ledger of every ship.\n".encode()
    return (line * (size // len(line) + 1))[:size]


@pytest.mark.parametrize("address", ["web", "api"])
def test_an_upload_without_an_uploader_gets_the_small_limit(server, team, member, outsider,
                                                            address):
    """The large upload limit needs someone the view would let upload, checked before the
    body is read: anonymous, forged, outsiders' and read-only requests are cut off after
    REQUEST_MAX_BYTES, 1 GB sent or declared."""
    path = (f"/t/{team.slug}/documents/upload/" if address == "web"
            else f"/api/v1/teams/{team.slug}/documents/")
    head, _ = _multipart("files" if address == "web" else "file", "big.txt")
    base = {"Content-Type": "multipart/form-data; boundary=edge-boundary",
            "Accept": "application/json"}
    name = django_settings.SESSION_COOKIE_NAME
    credentials = {
        "anonymous": {},
        "forged session": {"Cookie": f"{name}=0123456789abcdefghijklmnopqrstuv"},
        "an outsider's session": {"Cookie": f"{name}={_session(outsider)}"},
    }
    if address == "api":
        read_key = keys.create_key(team, member, "read", [Scope.READ])[1]
        credentials |= {"forged key": {"Authorization": "Bearer sk_live_0000_forged"},
                        "read-only key": {"Authorization": f"Bearer {read_key}"},
                        "malformed key": {"Authorization": "Bearer a b"}}
    _, written_before = server.usage()
    for who, headers in credentials.items():
        status, body, sent, seconds = send_streaming(
            server.port, path, [head, *endless(1024 * MB)], base | headers)
        print(f"{address} upload, {who}, 1 GB chunked: {status} after {sent / MB:.1f} MB "
              f"sent, {seconds:.2f} s")
        assert status == 413, (who, body)
        detail = json.loads(body)["detail"]
        assert "larger than 1.0 MB" in detail and "signed-in member" in detail, who
        assert sent < 64 * MB and seconds < 30, who
        status, body, sent, _ = send_streaming(
            server.port, path, [head, *endless(1024 * MB)],
            base | headers | {"Content-Length": str(1024 * MB), "Expect": "100-continue"},
            chunked=False)
        assert status == 413 and sent == 0, (who, "declared")  # refused before reading
    _, written_after = server.usage()
    assert written_after - written_before < 2 * MB  # nothing spooled past the small limit
    assert server.serves()


def test_a_members_and_a_write_keys_uploads_past_the_small_limit_work(server, team, member):
    """1.5 MB: over REQUEST_MAX_BYTES, under DOCUMENT_MAX_BYTES; declared and chunked."""
    web = httpx.Client(base_url=server.base, timeout=30)
    web.cookies.set(django_settings.SESSION_COOKIE_NAME, _session(member), domain="127.0.0.1")
    assert web.get(f"/t/{team.slug}/documents/").status_code == 200
    csrf = web.cookies["csrftoken"]
    upload = f"/t/{team.slug}/documents/upload/"
    response = web.post(upload, headers={"X-CSRFToken": csrf, "Accept": "application/json"},
                        files={"files": ("web.txt", _text(3 * MB // 2, "web"))})
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["ok"]

    # Chunked, the member's whole body passes the edge. (Django parses a multipart body only
    # with a Content-Length, so the view finds no file in it: the answer is not a 413.)
    head, tail = _multipart("files", "chunked.txt")
    cookie = "; ".join(f"{k}={v}" for k, v in web.cookies.items())
    chunks = [head, _text(3 * MB // 2, "chunked"), tail]
    status, body, sent, _ = send_streaming(
        server.port, upload, chunks,
        {"Content-Type": "multipart/form-data; boundary=edge-boundary", "Cookie": cookie,
         "X-CSRFToken": csrf, "Accept": "application/json"})
    assert status != 413 and sent == sum(map(len, chunks)), body

    token = keys.create_key(team, member, "edge", [Scope.READ, Scope.WRITE])[1]
    response = httpx.post(server.base + f"/api/v1/teams/{team.slug}/documents/",
                          headers={"Authorization": f"Bearer {token}"},
                          files={"file": ("api.txt", _text(3 * MB // 2, "api"))}, timeout=30)
    assert response.status_code == 201, response.text
    assert response.json()["title"] == "api"
    assert server.serves()


async def _app(scope, receive, send):
    """A plain ASGI app that reads the whole body and answers with its length."""
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


def _call(app, path: str, chunks: list[bytes], headers=(), method: str = "POST",
          http_version: str = "2"):
    import asyncio

    sent: list[dict] = []
    queue = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
             for i, c in enumerate(chunks)]

    async def receive():
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "root_path": "",
             "headers": list(headers), "http_version": http_version}
    asyncio.run(app(scope, receive, send))
    return sent, queue


def test_the_middleware_counts_chunks_and_stops_reading_at_the_limit(settings):
    settings.REQUEST_MAX_BYTES = 100
    app = BodyLimit(_app)
    sent, _ = _call(app, "/", [b"x" * 60, b"x" * 40])
    assert sent[0]["status"] == 200 and sent[1]["body"] == b"100"  # the limit itself passes
    sent, left = _call(app, "/", [b"x" * 60, b"x" * 60, b"x" * 60, b"x" * 60])
    assert [m.get("status") for m in sent] == [413, None]
    assert len(left) == 2  # the chunks after the one that passed the limit were never read
    assert (b"connection", b"close") in sent[0]["headers"]
    sent, left = _call(app, "/", [b"x"], headers=[(b"content-length", b"101")])
    assert sent[0]["status"] == 413 and len(left) == 1  # declared: refused before reading
    # Not an upload (a GET of the API's document list): the small limit, no credentials read.
    sent, _ = _call(app, "/api/v1/teams/t/documents/", [b"x" * 60] * 4, method="GET")
    assert sent[0]["status"] == 413
    assert b"(REQUEST_MAX_BYTES)" in sent[1]["body"]


def test_http1_framing_is_trusted_and_chunked_bodies_are_counted(settings):
    # HTTP/1 carries a body only with Content-Length or Transfer-Encoding: a request with
    # neither (a GET) or with a small declared length skips the address lookup; a chunked
    # body is counted on every version; HTTP/2 frames a body with neither header (above).
    settings.REQUEST_MAX_BYTES = 100
    app = BodyLimit(_app)
    sent, _ = _call(app, "/", [b""], method="GET", http_version="1.1")
    assert sent[0]["status"] == 200 and sent[1]["body"] == b"0"
    sent, _ = _call(app, "/", [b"x" * 80], headers=[(b"content-length", b"80")],
                    http_version="1.1")
    assert sent[0]["status"] == 200 and sent[1]["body"] == b"80"
    chunked = [(b"transfer-encoding", b"chunked")]
    for version in ("1.0", "1.1", "2"):
        sent, left = _call(app, "/", [b"x" * 60] * 4, headers=chunked, http_version=version)
        assert [m.get("status") for m in sent] == [413, None] and len(left) == 2


def test_each_address_has_its_limit(settings):
    from apps.core.bodylimit import limit_for, upload_limit

    settings.REQUEST_MAX_BYTES, settings.API_JSON_MAX_BYTES = 1000, 2000
    settings.DOCUMENT_MAX_BYTES, settings.DOCUMENT_MAX_FILES_PER_UPLOAD = 10 * MB, 3
    assert limit_for("/")[0] == 1000 and limit_for("/no/such/page/")[0] == 1000
    assert limit_for("/api/v1/teams/t/batches/")[0] == 2000
    assert limit_for("/api/v1/teams/t/documents/")[0] == upload_limit(1) > 10 * MB
    assert limit_for("/t/t/documents/upload/")[0] == upload_limit(3) > 30 * MB
    # The batch form's file may be as large as an API batch body (the view says why not).
    assert limit_for("/t/t/batches/")[0] > 2000 and limit_for("/t/t/batches/preview/")[0] > 2000


def test_who_gets_the_upload_limit(team, member, viewer, outsider):
    """`may_upload` answers as the views would: members and write keys of the team only."""
    from django.urls import resolve

    from apps.core.bodylimit import may_upload

    web, api = (resolve(f"/t/{team.slug}/documents/upload/"),
                resolve(f"/api/v1/teams/{team.slug}/documents/"))
    name = django_settings.SESSION_COOKIE_NAME.encode()

    def session(user) -> dict:
        return {"headers": [(b"cookie", b"csrftoken=x; " + name + b"=" + _session(user).encode())]}

    def bearer(token: str) -> dict:
        return {"headers": [(b"authorization", f"Bearer {token}".encode())]}

    assert may_upload(session(member), web) and may_upload(session(member), api)
    assert not may_upload(session(viewer), web)  # viewers may not upload
    batches = resolve(f"/t/{team.slug}/batches/")
    assert may_upload(session(member), batches) and not may_upload(session(viewer), batches)
    assert not may_upload(session(outsider), web)
    assert not may_upload({"headers": []}, web)
    write = keys.create_key(team, member, "w", [Scope.WRITE])
    assert may_upload(bearer(write[1]), api)
    assert not may_upload(bearer(write[1]), web)  # the library page takes sessions only
    other_team = outsider.memberships.first().team
    assert not may_upload(bearer(keys.create_key(other_team, outsider, "w", [Scope.WRITE])[1]),
                          api)
    keys.revoke(write[0])
    assert not may_upload(bearer(write[1]), api)
    stale = session(member)
    member.set_password("a new passphrase, the old sessions end")
    member.save()
    assert not may_upload(stale, web)  # the session's password hash no longer matches
    member.is_active = False
    member.save()
    assert not may_upload(session(member), web)


@pytest.mark.browser
def test_the_library_page_shows_the_edges_refusal(server, team, member, page):  # noqa: F811
    """The upload page reads the edge's 413 (a `detail`, no `results`): a member whose
    session ended while the page was open sees why the upload was refused."""
    from django.contrib.sessions.models import Session
    from django.db import connections
    from playwright.sync_api import expect

    try:
        page.context.add_cookies([{"name": django_settings.SESSION_COOKIE_NAME,
                                   "value": _session(member), "url": server.base}])
        page.goto(f"{server.base}/t/{team.slug}/documents/")
        rows = page.locator("#upload-list li .state")
        page.set_input_files("#file-input", files=[{
            "name": "kept.txt", "mimeType": "text/plain", "buffer": _text(3 * MB // 2, "kept")}])
        expect(rows.nth(0)).to_contain_text("Ingesting")  # signed in: it went through

        Session.objects.all().delete()  # signed out elsewhere, or the session expired
        page.set_input_files("#file-input", files=[{
            "name": "late.txt", "mimeType": "text/plain", "buffer": _text(3 * MB // 2, "late")}])
        expect(rows.nth(1)).to_contain_text("Refused: The request body (1.5 MB) is larger than "
                                            "1.0 MB")
        expect(rows.nth(1)).to_contain_text("without a signed-in member of the team")
        assert server.serves()
    finally:
        connections.close_all()  # the ORM calls made beside Playwright's loop
