from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.api import keys
from apps.api.models import Scope
from apps.documents.models import DocStatus, Document
from apps.teams.models import Role
from tests.factories import MembershipFactory

TEXT = ("The lighthouse keeper of Vellmar Point is named Oskar Brandt. He has kept the light "
        "since 1987 and paints the tower red every spring.\n\n")


def ready_document(team, text: str = TEXT, title: str = "Lighthouse", pages: int = 2):
    """A ready document without the ingest job (full/coa/xl3m need no search index)."""
    step = max(1, len(text) // pages)
    return Document.objects.create(
        team=team, title=title, original_name=f"{title}.txt",
        sha256=f"{abs(hash((text, title))):064d}"[:64], file=f"teams/{title}.txt", kind="text",
        status=DocStatus.READY, text=text, page_starts=list(range(0, step * pages, step)),
        pages=pages)


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def write_key(team, owner):
    return keys.create_key(team, owner, "ci", [Scope.READ, Scope.WRITE])


@pytest.fixture
def read_key(team, owner):
    return keys.create_key(team, owner, "dashboards", [Scope.READ])


@pytest.fixture
def other_team_key(db):
    other = MembershipFactory(role=Role.OWNER)
    return keys.create_key(other.team, other.user, "theirs", [Scope.READ, Scope.WRITE])


@pytest.fixture
def key_client(write_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {write_key[1]}")
    return client


@pytest.fixture
def document(team):
    return ready_document(team)


def url(team, rest: str = "") -> str:
    return f"/api/v1/teams/{team.slug}/{rest}"
