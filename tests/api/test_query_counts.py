"""Database round trips per API request: fixed, whatever the page holds, so a regression
(an N+1, a second lookup of the key's team, a separate COUNT) fails here."""

from __future__ import annotations

import pytest
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import F
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from apps.api import serializers as s
from apps.api.models import Batch
from apps.api.views import TeamAPIView
from tests.api.conftest import ready_document, url

pytestmark = pytest.mark.django_db

# An API key request: the key with its team and creator (one query), then the view's own.
KEY_LIST = 2  # key; the page with the total count of the filtered list


@pytest.fixture(autouse=True)
def no_throttle(settings):
    settings.API_THROTTLE_RATE = ""  # the throttle counts in Redis, not in these queries


def queries(client, path: str, expect: int = 200) -> list[str]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path)
    assert response.status_code == expect, response.content
    return [q["sql"] for q in ctx.captured_queries]


@pytest.mark.parametrize("documents", [1, 30])
def test_the_document_list_by_key_is_two_queries_whatever_the_page_holds(
    key_client, team, documents
):
    for n in range(documents):
        ready_document(team, title=f"Document {n}")
    path = url(team, "documents/")
    key_client.get(path)  # the key's first use writes last_used_at (once a minute at most)
    sql = queries(key_client, path)
    assert len(sql) == KEY_LIST, "\n".join(sql)
    assert "COUNT(*)" in sql[1] and " LIMIT " in sql[1]  # the total rides on the page
    assert '"text"' not in sql[1]  # the serializer's columns, not the document's text
    assert key_client.get(path).json()["count"] == documents


def test_the_count_is_of_the_filtered_list_and_pages_still_count(key_client, team):
    for n in range(5):
        ready_document(team, title=f"Report {n}" if n % 2 else f"Letter {n}")
    path = url(team, "documents/?q=report&page_size=1&page=2")
    key_client.get(path)
    assert len(queries(key_client, path)) == KEY_LIST
    body = key_client.get(path).json()
    assert body["count"] == 2 and len(body["results"]) == 1 and body["previous"]
    assert body["next"] is None
    # Past the last page there is no row to carry the count: counted apart, then 404.
    assert (
        len(queries(key_client, url(team, "documents/?q=report&page_size=1&page=3"), expect=404))
        == KEY_LIST + 1
    )
    assert key_client.get(url(team, f"documents/?page={2**62}")).status_code == 404
    empty = key_client.get(url(team, "documents/?status=failed")).json()
    assert empty == {"count": 0, "next": None, "previous": None, "results": []}


def test_the_batch_list_and_a_detail_by_key_take_the_same_few_queries(key_client, team):
    for n in range(3):
        Batch.objects.create(team=team, kind="qa", name=f"b{n}", total=1)
    key_client.get(url(team, "batches/"))
    assert len(queries(key_client, url(team, "batches/"))) == KEY_LIST
    batch = Batch.objects.filter(team=team).first()
    assert len(queries(key_client, url(team, f"batches/{batch.pk}/"))) == 2  # key; the batch


def test_another_teams_slug_is_404_without_reading_that_team(key_client, team, other_team_key):
    from apps.teams.models import Team

    other = Team.objects.get(pk=other_team_key[0].team_id)
    key_client.get(url(team, "documents/"))
    sql = queries(key_client, url(other, "documents/"), expect=404)
    assert len(sql) == 1  # the key (with its own team); the other team is never read


def test_a_session_list_resolves_the_membership_with_its_team_in_one_query(team, owner):
    client = APIClient()
    client.force_login(owner)
    ready_document(team)
    path = url(team, "documents/")
    client.get(path)
    # session, user, membership with team, page with count
    assert len(queries(client, path)) == 4


def test_the_throttle_is_one_redis_round_trip_per_request(key_client, team, settings, monkeypatch):
    from redis.connection import AbstractConnection

    settings.API_THROTTLE_RATE = "1000/minute"
    key_client.get(url(team, "batches/"))
    sent = []
    real = AbstractConnection.send_packed_command
    monkeypatch.setattr(
        AbstractConnection,
        "send_packed_command",
        lambda self, *a, **kw: sent.append(1) or real(self, *a, **kw),
    )
    assert key_client.get(url(team, "batches/")).status_code == 200
    assert len(sent) == 1  # the counter's add and increment and the previous window's read


def test_the_flat_document_list_is_what_drf_itself_gives(team):
    from django.utils import timezone
    from rest_framework import serializers

    ready_document(team, title="Plain")
    failed = ready_document(team, title="Failed")
    failed.status, failed.error, failed.error_code = "failed", "Bad PDF", "parse"
    failed.size_bytes, failed.tokens, failed.ingested_at = 12345, 678, timezone.now()
    failed.save()
    rows = list(team.documents.all())
    drf = serializers.ListSerializer(child=s.DocumentSerializer(), instance=rows).data
    assert s.DocumentSerializer(rows, many=True).data == drf
    assert s.DocumentSerializer(team.documents, many=True).data == drf  # a manager too
    assert drf[0]["ingested_at"].endswith("Z") and drf[1]["ingested_at"] is None


@pytest.mark.parametrize("serializer", [s.DocumentFilterSerializer, s.ResultsFilterSerializer])
def test_no_query_parameters_skip_only_a_validation_that_would_give_nothing(serializer):
    class View(TeamAPIView):
        pass

    view = View()
    view.request = type("Request", (), {"query_params": QueryDict()})()
    checked = serializer(data={})
    assert checked.is_valid() and view.filters(serializer) == checked.validated_data == {}


@pytest.mark.parametrize("page_size", [1, 2, 3, 10])
def test_a_page_carries_the_count_django_gives_on_every_page(team, page_size):
    from apps.api.views import OneQueryPaginator

    for n in range(5):
        ready_document(team, title=f"Report {n}" if n % 2 else f"Letter {n}")
    rows = team.documents.filter(title__startswith="Report").values("id", "title")
    django = Paginator(rows, page_size)
    for number in django.page_range:
        one = OneQueryPaginator(rows, page_size)
        with CaptureQueriesContext(connection) as ctx:
            page = one.page(number)
        assert len(ctx.captured_queries) == 1 and "COUNT(*) OVER ()" in ctx[0]["sql"]
        assert one.count == django.count == 2
        assert [r["id"] for r in page] == [r["id"] for r in django.page(number)]


def test_a_distinct_list_is_counted_after_its_duplicates_go(team, write_key, read_key):
    """A window counts rows before DISTINCT removes any: such a list counts apart."""
    from apps.api.views import OneQueryPaginator
    from apps.collections.models import Collection

    shared, own = (Collection.objects.create(team=team, name=name) for name in ("a", "b"))
    write_key[0].collections.set([shared, own])
    read_key[0].collections.set([shared])
    joined = Collection.objects.filter(api_keys__in=[write_key[0], read_key[0]])
    rows = joined.distinct()
    assert joined.count() == 3 and rows.count() == 2  # the shared one joins twice
    paginator = OneQueryPaginator(rows.order_by("pk"), 1)
    with CaptureQueriesContext(connection) as ctx:
        page = paginator.page(1)
        assert paginator.count == 2 and len(page) == 1 and page.has_next()
    assert len(ctx.captured_queries) == 2  # the count apart, as Django's paginator does


@pytest.mark.parametrize("zone", [None, "Europe/Paris"])
def test_listed_rows_are_what_drf_gives_for_the_same_documents(team, zone):
    """The list's .values() rows, converted with the fields copied and the times written with
    the zone read once, give DRF's own output for the documents: in UTC and in a zone a
    request activated."""
    import datetime

    from django.utils import timezone
    from rest_framework import serializers

    ready_document(team, title="Plain")
    failed = ready_document(team, title="Failed")
    failed.status, failed.error, failed.error_code = "failed", "Bad PDF", "parse"
    failed.ocr_pages, failed.unreadable_pages, failed.slow_pages = [1, 2], [3], [3]
    failed.ingested_at = datetime.datetime(2026, 3, 29, 0, 59, 59, tzinfo=datetime.UTC)
    failed.save()
    exact = ready_document(team, title="Exact")
    exact.ingested_at = datetime.datetime(2026, 10, 25, 1, 30, tzinfo=datetime.UTC)
    exact.save()
    fields = s.DocumentSerializer.Meta.fields
    with timezone.override(zone) if zone else timezone.override(datetime.UTC):
        rows = list(team.documents.annotate(collection=F("filing__collection")).values(*fields))
        instances = list(team.documents.annotate(collection=F("filing__collection")))
        drf = serializers.ListSerializer(child=s.DocumentSerializer(), instance=instances).data
        assert s.DocumentSerializer(rows, many=True).data == drf
    names, converted = s.row_converters(s.DocumentSerializer)
    assert names == tuple(fields)
    assert [name for name, _ in converted] == ["created_at", "ingested_at"]  # the rest copied
    times = {d["title"]: d["ingested_at"] for d in drf}
    assert times["Plain"] is None
    assert times["Exact"] == (
        "2026-10-25T01:30:00Z" if zone is None else "2026-10-25T02:30:00+01:00"
    )
