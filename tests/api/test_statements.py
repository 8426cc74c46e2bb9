"""The document list's page statements, compiled once per reader, filters and page
(apps/api/statements.py): the same rows as the ORM, never another reader's statement."""

from __future__ import annotations

import dataclasses

import pytest
from django.db.models import Count, F, Window
from django.db.models.sql.compiler import SQLCompiler
from django.utils import timezone
from rest_framework.test import APIClient

from apps.api import keys
from apps.api.models import Scope
from apps.api.statements import STATEMENTS, Statement, Statements
from apps.collections import access
from apps.collections.models import Collection, CollectionDocument
from tests.api.conftest import ready_document, url

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_throttle(settings):
    settings.API_THROTTLE_RATE = ""


def test_a_statements_rows_are_the_orms(team):
    """JSON and time columns through the fields' converters, annotations and the window."""
    plain = ready_document(team, title="Plain")
    failed = ready_document(team, title="Failed")
    failed.status, failed.error, failed.ocr_pages = "failed", "Bad PDF", [1, 3]
    failed.unreadable_pages, failed.ingested_at = [2], timezone.now()
    failed.save()
    box = Collection.objects.create(team=team, name="Box")
    CollectionDocument.objects.create(collection=box, document=plain)
    rows = (
        team.documents.annotate(collection=F("filing__collection"))
        .values(
            "id",
            "title",
            "ocr_pages",
            "unreadable_pages",
            "created_at",
            "ingested_at",
            "collection",
        )
        .annotate(page_total=Window(Count("*")))
    )
    assert Statement.of(rows[0:10]).rows() == list(rows[0:10])
    assert Statement.of(rows[1:2]).rows() == list(rows[1:2])
    with pytest.raises(TypeError):
        Statement.of(team.documents.all())  # model instances are the ORM's to make


def test_statements_are_kept_by_key_and_the_oldest_go_first(team):
    kept, built = Statements(size=2), []

    def build(title):
        built.append(title)
        return team.documents.filter(title=title).values("id")

    for title in ("a", "b", "a", "c", "b"):
        kept.get(title, lambda title=title: build(title))
    assert built == ["a", "b", "c", "b"]  # a kept; b went when c came (a was used later)


def test_a_reader_key_holds_every_field_of_the_reader(team, owner):
    """The statements are kept by Reader.key: a field it left out could share a statement
    between two readers that the rules tell apart."""
    reader = access.Reader(team, sees_all=False, writes=True, user_id=owner.pk, key_id=7)
    assert {f.name for f in dataclasses.fields(access.Reader)} == {
        "team",
        "sees_all",
        "writes",
        "user_id",
        "key_id",
    }
    assert reader.key == (team.pk, False, True, owner.pk, 7)


def _client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _titles(client, team, query: str = "") -> list[str]:
    response = client.get(url(team, f"documents/{query}"))
    assert response.status_code == 200, response.content
    return sorted(row["title"] for row in response.json()["results"])


def test_each_reader_gets_its_own_statement_in_turn(team, owner, other_team_key):
    """A scoped key, a whole-team key and another team's key list in turn in one process,
    each through the statements kept for it: each sees its own documents, every time."""
    from apps.teams.models import Team

    box = Collection.objects.create(team=team, name="Box")
    inside = ready_document(team, title="Inside")
    ready_document(team, title="Outside")
    CollectionDocument.objects.create(collection=box, document=inside)
    whole = _client(keys.create_key(team, owner, "whole", [Scope.READ])[1])
    scoped = _client(keys.create_key(team, owner, "scoped", [Scope.READ], [box])[1])
    other_team = Team.objects.get(pk=other_team_key[0].team_id)
    ready_document(other_team, title="Theirs")
    theirs = _client(other_team_key[1])
    for _ in range(2):
        assert _titles(whole, team) == ["Inside", "Outside"]
        assert _titles(scoped, team) == ["Inside"]
        assert _titles(theirs, other_team) == ["Theirs"]
        assert _titles(whole, team, "?q=out") == ["Outside"]
        assert _titles(scoped, team, "?q=out") == []
    assert theirs.get(url(team, "documents/")).status_code == 404


def test_a_repeated_list_compiles_nothing_and_reads_the_rows_now(key_client, team, monkeypatch):
    ready_document(team, title="First")
    path = url(team, "documents/")
    key_client.get(path)  # compiles the page's statement (and writes last_used_at)
    compiled = []
    real = SQLCompiler.as_sql
    monkeypatch.setattr(
        SQLCompiler, "as_sql", lambda self, *a, **kw: compiled.append(1) or real(self, *a, **kw)
    )
    assert [r["title"] for r in key_client.get(path).json()["results"]] == ["First"]
    assert compiled == []
    ready_document(team, title="Second")  # rows are never kept
    monkeypatch.setattr(SQLCompiler, "as_sql", real)
    body = key_client.get(path).json()
    assert body["count"] == 2 and {r["title"] for r in body["results"]} == {"First", "Second"}
    assert len(STATEMENTS._kept) <= STATEMENTS.size
