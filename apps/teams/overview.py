"""What the overview shows of a team: its library, conversations and writing, each a panel
of the latest few, and whether the team has tried each yet (the first steps)."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.humanize.templatetags.humanize import naturaltime
from django.urls import reverse

from apps.collections import access
from apps.documents.models import DocStatus
from apps.writing.models import ProjectStatus

LATEST = 5
# The badge colour of a status (the classes the jobs' badges use).
DOCUMENT_BADGES = {DocStatus.READY: "succeeded", DocStatus.FAILED: "failed",
                   DocStatus.PROCESSING: "running"}
PROJECT_BADGES = {ProjectStatus.DONE: "succeeded", ProjectStatus.FAILED: "failed",
                  ProjectStatus.PLANNING: "running", ProjectStatus.WRITING: "running"}


@dataclass(frozen=True)
class Item:
    url: str
    title: str
    note: str  # a status, or when it last changed
    badge: str = ""  # a badge class; none: `note` is plain text


@dataclass(frozen=True)
class Panel:
    name: str
    heading: str
    url: str
    count: int
    empty: str
    items: list[Item]


def _url(name: str, team, **kwargs) -> str:
    return reverse(name, kwargs={"team_slug": team.slug, **kwargs})


def panels(team, who) -> list[Panel]:
    """What ``who`` (a membership) may read: apps.collections.access."""
    documents = access.readable_documents(team, who)
    conversations = access.visible_conversations(team, who)
    projects = access.visible_projects(team, who)
    return [
        Panel("library", "Library", _url("documents:library", team), documents.count(),
              "No documents yet.",
              [Item(_url("documents:detail", team, pk=d.pk), d.title, d.get_status_display(),
                    DOCUMENT_BADGES.get(d.status, "queued")) for d in documents[:LATEST]]),
        Panel("conversations", "Conversations", _url("chat:list", team), conversations.count(),
              "No conversations yet.",
              [Item(_url("chat:detail", team, pk=c.pk), c.title, naturaltime(c.updated_at))
               for c in conversations[:LATEST]]),
        Panel("writing", "Writing", _url("writing:list", team), projects.count(),
              "No texts yet.",
              [Item(_url("writing:detail", team, pk=p.pk), p.title, p.get_status_display(),
                    PROJECT_BADGES.get(p.status, "queued")) for p in projects[:LATEST]]),
    ]


def has_ready_document(team, who) -> bool:
    return access.readable_documents(team, who).filter(status=DocStatus.READY).exists()
