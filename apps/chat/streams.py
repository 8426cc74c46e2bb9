"""The live stream of one answer (server-sent events): the row's snapshot, then the tokens as
they are generated, then "done"; the row re-read every few seconds (apps.core.sse.follow).

Events: "snapshot" {text, status} — the browser shows exactly this text (sent first, on
every reconnection, and whenever what it shows drifted from the row); "token" {text} — append;
"retry" {error} — the answer starts over; "done" {status} — fetch the rendered message.
"""

from __future__ import annotations

from django.http import Http404

from apps.chat.models import Message, MessageStatus
from apps.collections import access
from apps.core.sse import LiveText, event_stream_response, follow, sse, stream_membership
from workers import events


class AnswerFollower:
    """One answer message followed live (apps.core.sse.Follower)."""

    def __init__(self, query):
        self.query, self.shown, self.finished = query, LiveText(""), False

    async def _row(self) -> Message | None:
        return await self.query.only("status", "content").afirst()

    async def snapshot(self, row: Message | None = None) -> list[str]:
        row = row or await self._row()
        if row is None:  # deleted meanwhile (with its conversation)
            self.finished = True
            return [sse("done", {"status": "deleted"})]
        self.shown = LiveText(row.content)
        parts = [sse("snapshot", {"text": row.content, "status": row.status})]
        if not row.is_live:  # done, failed, cancelled: the browser renders the row
            self.finished = True
            parts.append(sse("done", {"status": row.status}))
        return parts

    def event(self, event: dict) -> list[str]:
        kind = event.get("type")
        if kind == "token":
            self.shown.add(event["text"])
            return [sse("token", {"text": event["text"]})]
        if kind == "retry":  # the backend failed; the job tries again shortly, from nothing
            self.shown = LiveText("")
            return [sse("retry", {"error": event.get("error", "")})]
        if kind in ("done", "error"):
            self.finished = True
            return [sse("done", event)]
        return []

    async def check(self, live: bool) -> list[str]:
        row = await self._row()
        if row is None or not row.is_live:  # ended while its events were lost: say so
            return await self.snapshot(row)
        if row.status == MessageStatus.PENDING and not row.content:
            text = None if not self.shown.text else ""  # waiting to start (again)
        else:
            text = self.shown.resync(row.content, live)
        if text is None:
            return []
        self.shown = LiveText(text)
        return [sse("snapshot", {"text": text, "status": row.status})]


async def stream(request, team_slug: str, pk: int, message_pk: int):
    """Server-sent events for one answer: the text so far, then each token, then done."""
    membership, login = await stream_membership(request, team_slug)
    if login is not None:
        return login
    query = Message.objects.filter(pk=message_pk, conversation_id=pk, conversation__in=(
        access.visible_conversations(membership.team, membership)))
    if not await query.aexists():
        raise Http404
    follower = AnswerFollower(query)
    return await event_stream_response(
        request, follow(follower, events.channel("message", message_pk)))
