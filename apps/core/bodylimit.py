"""Request-body limits at the edge of the app (ASGI), before Django reads anything.

Django's ASGI handler spools the whole body to a temporary file before any view runs, and
a chunked request has no Content-Length to check. `BodyLimit` wraps the app: a declared
Content-Length over the address's limit is answered 413 without reading a byte; a body
without one is counted as it arrives and answered 413 the moment it passes the limit (the
app sees a disconnect, so nothing past the limit is spooled). Either way the connection
closes, so the rest of the body is never read.

The limits: one document per file field on upload addresses (DOCUMENT_MAX_BYTES each,
DOCUMENT_MAX_FILES_PER_UPLOAD on the library's upload), API_JSON_MAX_BYTES for the REST
API, REQUEST_MAX_BYTES elsewhere. The large upload limit is only for someone the view would
let upload (`may_upload`, checked before a byte of the body is read): anyone else gets
REQUEST_MAX_BYTES, so an anonymous or forged request cannot spool gigabytes to disk.
"""

from __future__ import annotations

import json
from importlib import import_module
from types import SimpleNamespace

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user
from django.core.exceptions import PermissionDenied
from django.db import close_old_connections
from django.http import Http404
from django.http.cookie import parse_cookie
from django.urls import Resolver404, resolve

from apps.api import keys
from apps.teams.access import resolve_team_for_api

MULTIPART_OVERHEAD = 64 * 1024  # room for the multipart headers around each file
HTTP1 = ("1.0", "1.1")


def upload_limit(files: int) -> int:
    """The largest body that can carry `files` documents of the allowed size."""
    return files * (settings.DOCUMENT_MAX_BYTES + MULTIPART_OVERHEAD)


# The batch page's form takes a CSV/JSONL file as large as the API's JSON body.
BATCH_FORMS = ("batches:list", "batches:preview")
UPLOADS = ("documents:upload", "api:documents", *BATCH_FORMS)  # the addresses with large limits
NOT_AN_UPLOADER = ("REQUEST_MAX_BYTES for a request without a signed-in member of the team "
                   "or a write API key")


def _match(path_info: str):
    try:
        return resolve(path_info)
    except Resolver404:
        return None


def limit_for(path_info: str) -> tuple[int, str]:
    """The body limit of an address, with the setting that gives it (for the message)."""
    return _limit(_match(path_info))


def _limit(match) -> tuple[int, str]:
    if match is None:
        return settings.REQUEST_MAX_BYTES, "REQUEST_MAX_BYTES"
    name = match.view_name
    if name == "documents:upload":
        return upload_limit(settings.DOCUMENT_MAX_FILES_PER_UPLOAD), (
            "DOCUMENT_MAX_BYTES × DOCUMENT_MAX_FILES_PER_UPLOAD")
    if name == "api:documents":
        return upload_limit(1), "DOCUMENT_MAX_BYTES"
    if name in BATCH_FORMS:
        return settings.API_JSON_MAX_BYTES + MULTIPART_OVERHEAD, "API_JSON_MAX_BYTES"
    if name.startswith("api:"):
        return settings.API_JSON_MAX_BYTES, "API_JSON_MAX_BYTES"
    return settings.REQUEST_MAX_BYTES, "REQUEST_MAX_BYTES"


def _smallest_limit() -> int:
    return min(settings.REQUEST_MAX_BYTES, settings.API_JSON_MAX_BYTES, upload_limit(1))


def declared_length(meta) -> int:
    """A Django request's Content-Length (0 when missing or malformed)."""
    try:
        return max(0, int(meta.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


def too_large_message(limit: int, setting: str, length: int | None = None) -> str:
    size = f"The request body ({length / 1024 / 1024:,.1f} MB)" if length else (
        "The request body")
    return (f"{size} is larger than {limit / 1024 / 1024:,.1f} MB, the limit for this "
            f"address ({setting}).")


def _header(scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value
    return None


class _SessionData(dict):
    """A session's data, read only, for `get_user` (which checks the session's password
    hash): flushing or cycling a stale session is left to the view's own request."""

    def flush(self) -> None:
        pass

    def cycle_key(self) -> None:
        pass


def may_upload(scope, match) -> bool:
    """Whether the request comes from someone the upload address's view would let upload:
    on the API, a write key of the team (`Authorization: Bearer`, as ApiKeyAuthentication
    reads it) or else, as on the library page, a live session of a member of the team
    (member role or higher). Answered from the headers alone, before the body is read;
    the view still checks everything (CSRF too). Synchronous: the ORM and the session store."""

    slug = match.kwargs.get("slug") or match.kwargs.get("team_slug")
    bearer = (_header(scope, b"authorization") or b"").split()
    close_old_connections()  # outside Django's request cycle: honour CONN_MAX_AGE here too
    try:
        if match.view_name == "api:documents" and bearer[:1] and bearer[0].lower() == b"bearer":
            if len(bearer) != 2:
                return False
            principal = keys.authenticate(bearer[1].decode("ascii", "replace"))
        else:
            cookies = b"; ".join(v for k, v in scope.get("headers", ()) if k.lower() == b"cookie")
            session_key = parse_cookie(cookies.decode("latin-1")).get(
                settings.SESSION_COOKIE_NAME)
            if not session_key:
                return False
            data = import_module(settings.SESSION_ENGINE).SessionStore(session_key).load()
            principal = get_user(SimpleNamespace(session=_SessionData(data)))
        resolve_team_for_api(principal, slug, write=True)
        return True
    except (keys.InvalidKey, Http404, PermissionDenied):
        return False
    finally:
        close_old_connections()


def _content_length(scope) -> int | None:
    value = _header(scope, b"content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


async def _refuse(scope, send, message: str) -> None:
    accept = (_header(scope, b"accept") or b"").decode("latin-1")
    if scope["path"].startswith("/api/") or "json" in accept:
        body, kind = json.dumps({"detail": message, "code": "too_large"}).encode(), (
            b"application/json")
    else:
        body, kind = message.encode(), b"text/plain; charset=utf-8"
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """ASGI middleware: refuses request bodies over the address's limit with 413."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = _content_length(scope)
        if scope.get("http_version") in HTTP1 and _header(scope, b"transfer-encoding") is None \
                and (length or 0) <= _smallest_limit():
            # No body past any address's limit can come: HTTP/1 without Transfer-Encoding
            # frames exactly Content-Length bytes, none when it is absent. So no need to
            # resolve the address, which cost as much as a small API view. (HTTP/2 frames a
            # body without either header: counted below.)
            return await self.app(scope, receive, send)
        root = scope.get("root_path", "")
        path = scope["path"]
        match = _match(path[len(root):] if root and path.startswith(root) else path)
        limit, setting = _limit(match)
        small = settings.REQUEST_MAX_BYTES
        if match and match.view_name in UPLOADS and limit > small and (
                length is None or length > small):
            if scope.get("method") != "POST":  # a list, say: no upload, no lookup
                limit, setting = small, "REQUEST_MAX_BYTES"
            elif not await sync_to_async(may_upload)(scope, match):
                limit, setting = small, NOT_AN_UPLOADER
        if length is not None and length > limit:
            return await _refuse(scope, send, too_large_message(limit, setting, length))
        received, refused, answered, started = 0, False, False, False

        async def counted_receive():
            nonlocal received, refused, answered
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    if not started:
                        await _refuse(scope, send, too_large_message(limit, setting))
                        answered = True
                    return {"type": "http.disconnect"}  # the app stops reading here
            return message

        async def guarded_send(message):
            nonlocal started
            if answered:
                return  # the 413 is the answer
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counted_receive, guarded_send)
