"""Server-sent events for the async views that stream model output to the browser."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from asgiref.sync import sync_to_async
from django.http import StreamingHttpResponse

from apps.teams.access import resolve_team


def sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


async def stream_membership(request, team_slug: str):
    """The team membership of an async streaming request, through the one access helper
    (non-members get 404); a login redirect response when nobody is signed in."""
    user = await request.auser()
    if not user.is_authenticated:
        from django.contrib.auth.views import redirect_to_login

        return None, redirect_to_login(request.get_full_path())
    return await sync_to_async(resolve_team)(user, team_slug), None


def event_stream_response(events: AsyncIterator[str]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(events, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # proxies must not buffer the stream
    return response
