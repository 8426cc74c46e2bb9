"""The isolation matrix: every team endpoint of the API × every kind of caller.

Endpoints are read from the URLconf, so a new endpoint is covered (or this test fails until
it says how to fill the new URL's ids and what to send)."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from apps.api import keys
from apps.api.models import Batch
from apps.documents.models import Document
from apps.jobs.models import Job
from tests.api.conftest import ready_document

pytestmark = pytest.mark.django_db

READ, WRITE = "read", "write"


def api_team_endpoints() -> list[tuple[str, list[str], list[str]]]:
    """(url name, its parameters, its HTTP methods) for every URL under api/v1/teams/<slug>/."""
    found = []

    def walk(patterns, namespace, under_team):
        for p in patterns:
            team_here = under_team or "<slug:slug>" in str(p.pattern)
            if isinstance(p, URLResolver):
                walk(p.url_patterns, ":".join(filter(None, [namespace, p.namespace])), team_here)
            elif isinstance(p, URLPattern) and team_here and namespace == "api":
                view = p.callback.view_class
                methods = [m for m in ("get", "post", "put", "patch", "delete")
                           if hasattr(view, m)]
                params = [k for k in p.pattern.regex.groupindex if k != "slug"]
                found.append((f"api:{p.name}", params, methods))

    walk(get_resolver().url_patterns, "", False)
    return found


def test_the_matrix_covers_the_endpoints():
    names = {name for name, _, _ in api_team_endpoints()}
    assert names == {"api:documents", "api:document", "api:document_page", "api:batches",
                     "api:batch", "api:batch_cancel", "api:batch_retry", "api:batch_results",
                     "api:batch_results_jsonl", "api:question_estimate"}


# POSTs that change nothing (a dry run): whoever may read may ask.
READ_ONLY_POSTS = {"api:question_estimate"}


# Who is asking, and what they may do: (may read, may write, status when refused).
CALLERS = {
    "owner": (True, True, None),
    "admin": (True, True, None),
    "member": (True, True, None),
    "viewer": (True, False, 403),
    "write_key": (True, True, None),
    "read_key": (True, False, 403),
    "outsider": (False, False, 404),
    "other_team_key": (False, False, 404),
    "revoked_key": (False, False, 401),
    "anonymous": (False, False, 401),
}


@pytest.fixture
def world(team, owner, admin, member, viewer, outsider, other_team_key):
    document = ready_document(team)
    batch = Batch.objects.create(team=team, kind="qa", total=0)
    revoked, revoked_token = keys.create_key(team, owner, "old", ["read", "write"])
    keys.revoke(revoked)
    return {
        "users": {"owner": owner, "admin": admin, "member": member, "viewer": viewer,
                  "outsider": outsider},
        "tokens": {"write_key": keys.create_key(team, owner, "w", ["read", "write"])[1],
                   "read_key": keys.create_key(team, owner, "r", ["read"])[1],
                   "other_team_key": other_team_key[1], "revoked_key": revoked_token},
        "ids": {"pk": document.pk, "page": 1},
        "batch": batch.pk,
        "document": document,
    }


def _client(world, caller: str) -> APIClient:
    client = APIClient()
    if caller in world["users"]:
        client.force_login(world["users"][caller])
    elif caller in world["tokens"]:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {world['tokens'][caller]}")
    return client


def _request(client, world, team, name, params, method):
    kwargs = {"slug": team.slug}
    if "pk" in params:
        kwargs["pk"] = world["batch"] if name.startswith("api:batch") else world["ids"]["pk"]
    if "page" in params:
        kwargs["page"] = 1
    url = reverse(name, kwargs=kwargs)
    if method == "post" and name == "api:documents":
        upload = SimpleUploadedFile("note.txt", b"A short note about the harbour.")
        return client.post(url, {"file": upload}, format="multipart")
    if method == "patch" and name == "api:document":
        return client.patch(url, {"title": "Renamed"}, format="json")
    if method == "post" and name == "api:question_estimate":
        return client.post(url, {"question": "Who keeps the light?",
                                 "document_ids": [world["ids"]["pk"]]}, format="json")
    if method == "post" and name == "api:batches":
        return client.post(url, {"kind": "qa", "questions": ["Who keeps the light?"],
                                 "document_ids": [world["ids"]["pk"]]}, format="json")
    return getattr(client, method)(url)


@pytest.mark.parametrize("caller", list(CALLERS))
def test_every_endpoint_for_every_caller(team, world, caller):
    may_read, may_write, refused = CALLERS[caller]
    client = _client(world, caller)
    calls = [(name, params, method) for name, params, methods in api_team_endpoints()
             for method in methods]
    calls.sort(key=lambda c: c[2] == "delete")  # deleting the document goes last
    jobs_before = Job.objects.count()
    for name, params, method in calls:
        response = _request(client, world, team, name, params, method)
        allowed = may_read if method == "get" or name in READ_ONLY_POSTS else may_write
        where = f"{caller} {method.upper()} {name}: {response.status_code}"
        if allowed:
            assert response.status_code < 300, where
        else:
            assert response.status_code == refused, where
    if not may_write:  # nothing changed
        assert Document.objects.filter(pk=world["ids"]["pk"], title="Lighthouse").exists()
        assert Batch.objects.filter(team=team).count() == 1
        assert Document.objects.filter(team=team).count() == 1
        assert Job.objects.count() == jobs_before


def test_an_object_of_another_team_is_404_through_ones_own_team(team, world, other_team_key):
    """Team B's key, addressing its own team, with team A's ids: scoped, never looked up."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {other_team_key[1]}")
    own = other_team_key[0].team
    ready_document(own, title="Mine")
    for name, params, methods in api_team_endpoints():
        if not params:
            continue
        kwargs = {"slug": own.slug, "pk": world["batch"] if name.startswith("api:batch")
                  else world["ids"]["pk"]}
        if "page" in params:
            kwargs["page"] = 1
        for method in methods:
            response = getattr(client, method)(reverse(name, kwargs=kwargs))
            assert response.status_code == 404, f"{method} {name}"
    assert Document.objects.filter(pk=world["ids"]["pk"]).exists()


def test_schema_and_docs_need_no_team_and_reveal_none(client):
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200
