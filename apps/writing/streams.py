"""The live stream of a writing project (server-sent events): the section being written, its
text so far, then each token; "section" when the next one starts, "done" when the job ends;
the rows re-read every few seconds (apps.core.sse.follow), so a page whose events were lost
still shows the saved text and still learns that the job ended."""

from __future__ import annotations

from django.http import Http404

from apps.collections import access
from apps.core.sse import LiveText, event_stream_response, follow, sse, stream_membership
from apps.writing.models import Section, SectionStatus
from workers import events


class WritingFollower:
    """One writing project followed live (apps.core.sse.Follower)."""

    def __init__(self, query, pk: int):
        self.query, self.pk, self.finished = query, pk, False
        self.section, self.shown = None, LiveText("")

    async def _rows(self):
        # The job comes along: is_busy reads it, and an async view cannot query lazily.
        project = await self.query.select_related("job").afirst()
        current = await Section.objects.filter(project_id=self.pk,
                                               status=SectionStatus.WRITING).afirst()
        return project, current

    def _snapshot(self, project, current) -> list[str]:
        self.finished = project is None or not project.is_busy
        if project is None:  # deleted meanwhile
            return [sse("done", {"status": "deleted"})]
        self.section = current.position if current else None
        self.shown = LiveText(current.text if current else "")
        parts = [sse("snapshot", {"section": self.section, "text": self.shown.snapshot,
                                  "status": project.status})]
        if self.finished:
            parts.append(sse("done", {"status": project.status}))
        return parts

    async def snapshot(self) -> list[str]:
        return self._snapshot(*await self._rows())

    def event(self, event: dict) -> list[str]:
        kind = event.get("type")
        if kind == "token" and event.get("section") in (None, self.section):
            self.shown.add(event["text"])
        elif kind == "section":
            self.section, self.shown = event.get("section"), LiveText("")
        elif kind == "done":
            self.finished = True
        elif kind != "section_done":
            return []
        return [sse(kind, event)]

    async def check(self, live: bool) -> list[str]:
        project, current = await self._rows()
        position = current.position if current else None
        if project is None or not project.is_busy or position != self.section:
            return self._snapshot(project, current)  # ended, or another section now
        text = self.shown.resync(current.text if current else "", live)
        if text is None:
            return []
        self.shown = LiveText(text)
        return [sse("snapshot", {"section": self.section, "text": text,
                                 "status": project.status})]


async def stream(request, team_slug: str, pk: int):
    """Server-sent events of the section being written (WritingFollower)."""
    membership, login = await stream_membership(request, team_slug)
    if login is not None:
        return login
    query = access.visible_projects(membership.team, membership).filter(pk=pk)
    if not await query.aexists():
        raise Http404
    return await event_stream_response(
        request, follow(WritingFollower(query, pk), events.channel("writing", pk)))
