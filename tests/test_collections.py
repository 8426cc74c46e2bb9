"""Collections × roles: a restricted collection's documents, and their text, reach only the
members it names (read, or read + write) and the team's admins and owners — in the library,
the viewer, search, chat, writing, compress, jobs, batches, the overview and the API; keys
scoped to collections see only those. Outsiders of the team get 404 (tests/test_isolation.py
covers the collections URLs too)."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from apps.api import keys
from apps.api import services as batches
from apps.chat import services as chat
from apps.chat.models import Message
from apps.collections import access
from apps.collections import services as collections
from apps.collections.models import Collection, CollectionAccess
from apps.documents.models import Document
from apps.documents.search import search
from apps.jobs import services as jobs
from apps.teams.models import Role
from apps.writing.models import WritingProject
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

SECRET = ("Board minutes.\n\nThe board approved the merger with Halvorsen Shipping for forty "
          "million crowns. The codename of the deal is Bluefinch.")
OPEN = ("Staff newsletter.\n\nThe canteen in Rotterdam opens at eight. The summer party is "
        "in June at the harbour.")
WORD = "Bluefinch"  # appears only in the secret document


def _doc_url(name, team, **kw):
    return reverse(name, kwargs={"team_slug": team.slug, **kw})


def _upload(client, team, name, text, collection=None):
    data = {"files": [SimpleUploadedFile(name, text.encode())]}
    if collection is not None:
        data["collection"] = str(collection.pk)
    response = client.post(_doc_url("documents:upload", team), data,
                           headers={"Accept": "application/json"})
    return response


def _ingested(response) -> Document:
    document = Document.objects.get(pk=response.json()["results"][0]["id"])
    assert jobs.run(document.job.pk, document.job.celery_task_id) == "succeeded"
    document.refresh_from_db()
    return document


@pytest.fixture
def lib(client, team, owner):
    """A restricted collection "Board" holding the secret document, an open collection, an
    open document, and members of each kind."""
    board = collections.create(team, "Board", restricted=True)
    shared = collections.create(team, "Shared")
    people = {
        "owner": owner,
        "admin": MembershipFactory(team=team, role=Role.ADMIN).user,
        "member": MembershipFactory(team=team, role=Role.MEMBER).user,  # no grant
        "reader": MembershipFactory(team=team, role=Role.MEMBER).user,
        "writer": MembershipFactory(team=team, role=Role.MEMBER).user,
        "viewer": MembershipFactory(team=team, role=Role.VIEWER).user,  # granted write
    }
    collections.grant(board, people["reader"], can_write=False)
    collections.grant(board, people["writer"], can_write=True)
    collections.grant(board, people["viewer"], can_write=True)
    client.force_login(owner)
    secret = _ingested(_upload(client, team, "board.txt", SECRET, board))
    open_doc = _ingested(_upload(client, team, "news.txt", OPEN))
    client.logout()
    return {"board": board, "shared": shared, "secret": secret, "open": open_doc, **people}


def _membership(team, user):
    return team.memberships.get(user=user)


# -- The rule -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("who", "reads", "writes"), [
    ("owner", True, True), ("admin", True, True), ("writer", True, True),
    ("reader", True, False), ("viewer", True, False), ("member", False, False)])
def test_who_reads_and_writes_the_restricted_collection(team, lib, who, reads, writes):
    m = _membership(team, lib[who])
    secret, open_doc = lib["secret"], lib["open"]
    assert access.readable_documents(team, m).filter(pk=secret.pk).exists() == reads
    assert access.writable_documents(team, m).filter(pk=secret.pk).exists() == writes
    assert access.readable_documents(team, m).filter(pk=open_doc.pk).exists()
    # Open documents: members and up write, viewers only read.
    assert access.writable_documents(team, m).filter(pk=open_doc.pk).exists() == (
        who != "viewer")
    assert access.readable_collections(team, m).filter(pk=lib["board"].pk).exists() == reads


def test_keys_scoped_to_collections_see_only_theirs(team, lib):
    whole, _ = keys.create_key(team, lib["owner"], "all", ["read"])
    scoped, _ = keys.create_key(team, lib["owner"], "board", ["read", "write"],
                                collections=[lib["board"]])
    shared, _ = keys.create_key(team, lib["owner"], "shared", ["read"],
                                collections=[lib["shared"]])
    ids = lambda key: set(access.readable_documents(team, key).values_list("pk", flat=True))  # noqa: E731
    assert ids(whole) == {lib["secret"].pk, lib["open"].pk}
    assert ids(scoped) == {lib["secret"].pk}  # not the open rest
    assert ids(shared) == set()
    assert not access.writable_documents(team, whole).exists()  # a read key
    assert set(access.writable_documents(team, scoped).values_list("pk", flat=True)) == {
        lib["secret"].pk}
    other = MembershipFactory(role=Role.OWNER)
    with pytest.raises(ValueError, match="own team"):
        keys.create_key(other.team, other.user, "x", ["read"], collections=[lib["board"]])


def test_leaving_the_team_drops_the_grants(team, lib):
    _membership(team, lib["reader"]).delete()
    assert not CollectionAccess.objects.filter(user=lib["reader"]).exists()


# -- Pages: a member without access ---------------------------------------------------------------


def _hidden_objects(team, lib):
    """What others made from the secret document: a conversation with a cited answer, a
    writing project with it as a reference, a batch over it."""
    owner, secret = lib["owner"], lib["secret"]
    conversation = chat.start_conversation(team, owner, [secret], "Merger talk")
    asked = Message.objects.create(conversation=conversation, role="user", content="Who?")
    reply = Message.objects.create(
        conversation=conversation, role="assistant", content=f"It is {WORD}.", reply_to=asked,
        citations=[{"n": 1, "document_id": secret.pk, "start": 0, "end": 10,
                    "quote": f"codename {WORD}", "title": secret.title, "page": 1}])
    project = WritingProject.objects.create(team=team, title="Merger memo", instruction="x",
                                            target_words=300)
    project.documents.set([secret])
    batch = batches.submit_batch(team, {"kind": "qa", "questions": ["Who is it?"],
                                        "document_ids": [secret.pk]}, user=owner).batch
    return conversation, reply, project, batch


def test_a_member_without_access_sees_none_of_it_in_the_pages(client, team, lib):
    conversation, reply, project, batch = _hidden_objects(team, lib)
    secret = lib["secret"]
    client.force_login(lib["member"])
    seen = [client.get(_doc_url(name, team), params) for name, params in [
        ("documents:library", {}), ("documents:library", {"collection": lib["board"].pk}),
        ("documents:search", {"q": "merger shipping codename"}),
        ("documents:search", {"q": "approved deal crowns"}),
        ("collections:list", {}), ("teams:dashboard", {}), ("jobs:list", {}),
        ("chat:list", {}), ("writing:list", {}), ("compress:index", {}),
        ("batches:list", {})]]
    for response in seen:
        assert response.status_code == 200, response.request["PATH_INFO"]
        body = response.content.decode()
        assert WORD not in body and "Halvorsen" not in body and secret.title not in body \
            and "Board" not in body and "Merger" not in body, response.request["PATH_INFO"]
    assert "canteen" in client.get(_doc_url("documents:search", team), {"q": "canteen"}
                                   ).content.decode()
    gone = [
        _doc_url("documents:detail", team, pk=secret.pk),
        _doc_url("documents:status", team, pk=secret.pk),
        _doc_url("jobs:detail", team, pk=secret.job_id),
        _doc_url("chat:detail", team, pk=conversation.pk),
        _doc_url("chat:export", team, pk=conversation.pk, fmt="md"),
        _doc_url("chat:message", team, pk=conversation.pk, message_pk=reply.pk),
        _doc_url("chat:stream", team, pk=conversation.pk, message_pk=reply.pk),
        _doc_url("writing:detail", team, pk=project.pk),
        _doc_url("writing:export", team, pk=project.pk, fmt="md"),
        _doc_url("writing:stream", team, pk=project.pk),
        _doc_url("batches:detail", team, pk=batch.pk),
        _doc_url("batches:download", team, pk=batch.pk, fmt="csv"),
        _doc_url("jobs:detail", team, pk=batch.items.get().job_id),
    ]
    for url in gone:
        assert client.get(url).status_code == 404, url
    posts = [
        (_doc_url("documents:delete", team, pk=secret.pk), {}),
        (_doc_url("documents:rename", team, pk=secret.pk), {"title": "x"}),
        (_doc_url("documents:reingest", team, pk=secret.pk), {}),
        (_doc_url("collections:move_document", team, pk=secret.pk), {"collection": "none"}),
        (_doc_url("chat:ask", team, pk=conversation.pk), {"question": "Who?"}),
        (_doc_url("chat:preview", team, pk=conversation.pk), {"question": "Who?"}),
    ]
    for url, data in posts:
        assert client.post(url, data).status_code == 404, url
    assert Document.objects.filter(pk=secret.pk, title=secret.title).exists()


def test_a_member_without_access_cannot_use_it_as_a_source(client, team, lib):
    secret = lib["secret"]
    client.force_login(lib["member"])
    before = team.conversations.count()
    client.post(_doc_url("chat:list", team), {"documents": [secret.pk]})
    assert team.conversations.count() == before  # "choose at least one ready document"
    response = client.post(_doc_url("writing:list", team), {
        "instruction": "A memo on the merger.", "target_words": "300",
        "documents": [secret.pk]})
    assert response.status_code == 400 and not team.writing_projects.exists()
    response = client.post(_doc_url("compress:index", team), {
        "document": secret.pk, "ratio": "4", "method": "scope"})
    assert response.status_code == 400 and not team.jobs.filter(kind="compress").exists()
    response = client.post(_doc_url("batches:list", team), {
        "kind": "qa", "text": "Who is it?", "documents": [secret.pk], "strategy": "auto"})
    assert response.status_code == 400 and not team.batches.exists()
    # Search scoped to the readable documents, whatever the query.
    readable = access.readable_documents(team, _membership(team, lib["member"])).values_list(
        "pk", flat=True)
    for mode in ("hybrid", "dense", "lexical"):
        hits = search(team, f"{WORD} merger Halvorsen", mode=mode, document_ids=readable)
        assert all(h.chunk.document_id != secret.pk for h in hits), mode
    # The same file uploaded again: refused without the title of the hidden copy.
    result = _upload(client, team, "copy.txt", SECRET).json()["results"][0]
    assert not result["ok"] and result["code"] == "duplicate_hidden"
    assert secret.title not in result["error"]


def test_reader_reads_but_cannot_change_or_add(client, team, lib):
    secret = lib["secret"]
    client.force_login(lib["reader"])
    page = client.get(_doc_url("documents:detail", team, pk=secret.pk)).content.decode()
    assert WORD in page and 'name="title"' not in page  # no rename/delete/move forms
    assert WORD in client.get(_doc_url("documents:search", team), {"q": WORD}).content.decode()
    for name, data in [("documents:delete", {}), ("documents:rename", {"title": "x"}),
                       ("documents:reingest", {})]:
        assert client.post(_doc_url(name, team, pk=secret.pk), data).status_code == 403
    client.post(_doc_url("collections:move_document", team, pk=secret.pk),
                {"collection": "none"})
    assert secret.filing.collection_id == lib["board"].pk  # still there
    client.post(_doc_url("collections:move_document", team, pk=lib["open"].pk),
                {"collection": lib["board"].pk})
    assert not Document.objects.filter(pk=lib["open"].pk, filing__isnull=False).exists()
    result = _upload(client, team, "more.txt", "Another board paper.", lib["board"]).json()
    assert result["results"][0]["ok"] is False and result["results"][0]["status"] == 403
    assert lib["board"].filings.count() == 1


def test_writer_adds_and_moves_documents_in_the_collection(client, team, lib):
    client.force_login(lib["writer"])
    result = _upload(client, team, "more.txt", "Another board paper.", lib["board"]).json()
    added = Document.objects.get(pk=result["results"][0]["id"])
    assert added.filing.collection_id == lib["board"].pk
    client.post(_doc_url("collections:move_document", team, pk=lib["open"].pk),
                {"collection": lib["board"].pk})
    assert Document.objects.get(pk=lib["open"].pk).filing.collection_id == lib["board"].pk
    member = _membership(team, lib["member"])
    assert not access.readable_documents(team, member).filter(pk=lib["open"].pk).exists()
    # A viewer with a write grant still only reads: the role caps it.
    client.force_login(lib["viewer"])
    assert client.post(_doc_url("documents:upload", team)).status_code == 403


def test_admins_manage_collections_and_members_cannot(client, team, lib):
    board = lib["board"]
    client.force_login(lib["member"])
    assert client.post(_doc_url("collections:list", team), {"name": "Mine"}).status_code == 403
    assert client.post(_doc_url("collections:restrict", team, pk=lib["shared"].pk),
                       {"restricted": "on"}).status_code == 403
    client.force_login(lib["admin"])
    assert client.post(_doc_url("collections:list", team), {"name": "Legal",
                                                            "restricted": "on"}).status_code == 302
    legal = team.collections.get(name="Legal")
    assert legal.restricted
    assert client.post(_doc_url("collections:list", team), {"name": "Legal"}).status_code == 400
    response = client.post(_doc_url("collections:rename", team, pk=legal.pk),
                           {"name": "Legal team"}, headers={"HX-Request": "true"})
    assert response.status_code == 200 and "Legal team" in response.content.decode()
    member = _membership(team, lib["member"])
    client.post(_doc_url("collections:grant", team, pk=legal.pk),
                {"member": member.pk, "access": "write"})
    assert CollectionAccess.objects.get(collection=legal, user=lib["member"]).can_write
    client.post(_doc_url("collections:revoke", team, pk=legal.pk, user_pk=lib["member"].pk))
    assert not legal.grants.exists()
    client.post(_doc_url("collections:delete", team, pk=board.pk))
    assert Collection.objects.filter(pk=board.pk).exists()  # holds a document
    client.post(_doc_url("collections:delete", team, pk=legal.pk))
    assert not Collection.objects.filter(pk=legal.pk).exists()
    page = client.get(_doc_url("collections:list", team)).content.decode()
    assert "Board" in page and "Shared" in page


# -- The API --------------------------------------------------------------------------------------


def _api(team, rest=""):
    return f"/api/v1/teams/{team.slug}/{rest}"


def _callers(team, lib) -> dict[str, APIClient]:
    clients = {}
    session = APIClient()
    session.force_login(lib["member"])
    clients["member session"] = session
    for name, scopes, shelves in [("shared key", ["read", "write"], [lib["shared"]])]:
        _, token = keys.create_key(team, lib["owner"], name, scopes, collections=shelves)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        clients[name] = client
    return clients


def test_the_api_hides_the_collection_from_every_endpoint(team, lib):
    conversation, reply, project, batch = _hidden_objects(team, lib)
    secret = lib["secret"]
    for who, api in _callers(team, lib).items():
        listed = api.get(_api(team, "documents/")).json()
        assert secret.pk not in {d["id"] for d in listed["results"]}, who
        assert api.get(_api(team, "documents/"), {"collection": lib["board"].pk}
                       ).json()["count"] == 0, who
        for path in [f"documents/{secret.pk}/", f"documents/{secret.pk}/pages/1/",
                     f"batches/{batch.pk}/", f"batches/{batch.pk}/results/",
                     f"batches/{batch.pk}/results.jsonl"]:
            assert api.get(_api(team, path)).status_code == 404, (who, path)
        assert api.patch(_api(team, f"documents/{secret.pk}/"), {"title": "x"},
                         format="json").status_code == 404, who
        assert api.delete(_api(team, f"documents/{secret.pk}/")).status_code == 404, who
        assert api.post(_api(team, f"batches/{batch.pk}/cancel/")).status_code == 404, who
        assert batch.pk not in {b["id"] for b in api.get(_api(team, "batches/")).json()[
            "results"]}, who
        estimate = api.post(_api(team, "questions/estimate/"),
                            {"question": "Who?", "document_ids": [secret.pk]}, format="json")
        assert estimate.status_code == 400 and "No such document" in str(estimate.json()), who
        made = api.post(_api(team, "batches/"), {"kind": "qa", "questions": ["Who?"],
                                                 "document_ids": [secret.pk]}, format="json")
        assert made.status_code == 400 and "unknown document" in str(made.json()), who
        upload = api.post(_api(team, "documents/"), {
            "file": SimpleUploadedFile("b.txt", b"Board notes."),
            "collection": lib["board"].pk}, format="multipart")
        assert upload.status_code == 400 and "collection" in upload.json(), who
    assert Document.objects.filter(pk=secret.pk).exists()
    assert team.batches.count() == 1


def test_an_idempotent_replay_shows_no_batch_over_a_hidden_document(team, lib):
    """The same Idempotency-Key and body from someone who may not read the document is
    refused as any request naming an unknown document, not answered with the batch."""
    body = {"kind": "qa", "questions": ["Who is it?"], "document_ids": [lib["secret"].pk]}
    owner = APIClient()
    owner.force_login(lib["owner"])
    first = owner.post(_api(team, "batches/"), body, format="json",
                       headers={"Idempotency-Key": "board-1"})
    assert first.status_code == 201
    again = owner.post(_api(team, "batches/"), body, format="json",
                       headers={"Idempotency-Key": "board-1"})
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    for who, api in _callers(team, lib).items():
        replay = api.post(_api(team, "batches/"), body, format="json",
                          headers={"Idempotency-Key": "board-1"})
        assert replay.status_code == 400 and "unknown document" in str(replay.json()), who
    assert team.batches.count() == 1


def test_a_scoped_key_works_inside_its_collection(team, lib):
    _, token = keys.create_key(team, lib["owner"], "board", ["read", "write"],
                               collections=[lib["board"]])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    listed = api.get(_api(team, "documents/")).json()["results"]
    assert [(d["id"], d["collection"]) for d in listed] == [(lib["secret"].pk, lib["board"].pk)]
    assert api.get(_api(team, f"documents/{lib['open'].pk}/")).status_code == 404
    refused = api.post(_api(team, "documents/"), {
        "file": SimpleUploadedFile("n.txt", b"Notes of the board.")}, format="multipart")
    assert refused.status_code == 400 and refused.json()["code"] == "collection_required"
    made = api.post(_api(team, "documents/"), {
        "file": SimpleUploadedFile("n.txt", b"Notes of the board."),
        "collection": lib["board"].pk}, format="multipart")
    assert made.status_code == 201 and made.json()["collection"] == lib["board"].pk
    estimate = api.post(_api(team, "questions/estimate/"),
                        {"question": "Who?", "document_ids": [lib["secret"].pk]}, format="json")
    assert estimate.status_code == 200


def test_a_reader_session_reads_but_cannot_change_through_the_api(team, lib):
    api = APIClient()
    api.force_login(lib["reader"])
    secret = lib["secret"]
    assert api.get(_api(team, f"documents/{secret.pk}/")).json()["collection"] == \
        lib["board"].pk
    assert api.patch(_api(team, f"documents/{secret.pk}/"), {"title": "x"},
                     format="json").status_code == 403
    assert api.delete(_api(team, f"documents/{secret.pk}/")).status_code == 403


# -- A collection as a writing source (#20: writing from a collection) -------------------------


def test_a_member_without_access_cannot_write_from_the_collection(client, team, lib):
    board, member = lib["board"], lib["member"]
    client.force_login(member)
    form = {"instruction": "A memo on the merger.", "target_words": "300"}
    page = client.get(_doc_url("writing:list", team)).content.decode()
    assert 'data-testid="source-collection"' in page and "Board" not in page  # not offered
    elsewhere = collections.create(MembershipFactory(role=Role.OWNER).team, "Elsewhere")
    for value in (board.pk, elsewhere.pk, 999_999, "x"):
        response = client.post(_doc_url("writing:list", team), {**form, "collection": value})
        assert response.status_code == 400, value
        assert "No such collection, or you cannot read it." in response.content.decode()
    assert not team.writing_projects.exists()
    # Their own project cannot take it either (on the project's page).
    client.post(_doc_url("writing:list", team), {**form, "collection": lib["shared"].pk})
    mine = team.writing_projects.get()
    assert mine.collection == lib["shared"]
    client.post(_doc_url("writing:source", team, pk=mine.pk), {"collection": board.pk})
    mine.refresh_from_db()
    assert mine.collection == lib["shared"]
    # Someone else's project written from the board is hidden, as a project over a hidden
    # document is: 404, absent from the list, its jobs too.
    theirs = WritingProject.objects.create(team=team, title="Merger memo", instruction="x",
                                           target_words=300, collection=board)
    from apps.writing import services as writing
    theirs = writing.start_plan(theirs, lib["owner"])
    for url in [_doc_url("writing:detail", team, pk=theirs.pk),
                _doc_url("writing:export", team, pk=theirs.pk, fmt="md"),
                _doc_url("writing:stream", team, pk=theirs.pk),
                _doc_url("jobs:detail", team, pk=theirs.job_id)]:
        assert client.get(url).status_code == 404, url
    assert client.post(_doc_url("writing:source", team, pk=theirs.pk),
                       {"collection": ""}).status_code == 404
    assert client.post(_doc_url("writing:write", team, pk=theirs.pk)).status_code == 404
    for name in ("writing:list", "jobs:list"):
        assert "Merger" not in client.get(_doc_url(name, team)).content.decode(), name
    theirs.refresh_from_db()
    assert theirs.collection == board
    # Those who read the board see it and may choose it.
    client.force_login(lib["reader"])
    assert client.get(_doc_url("writing:detail", team, pk=theirs.pk)).status_code == 200
    response = client.post(_doc_url("writing:list", team), {**form, "collection": board.pk})
    assert response.status_code == 302


def test_a_member_who_loses_access_gets_none_of_its_text(team, lib, monkeypatch):
    """Written with the access of whoever starts the job, read when it runs: after the grant
    is revoked, nothing of the board reaches a prompt, a section or the reference list."""
    from apps.writing import services as writing
    from apps.writing.document import references
    from tests.qa.conftest import Spy
    from workers.llm import get_backend

    reader = lib["reader"]
    project = writing.create_project(
        team, reader, instruction="Write a memo on the merger.", target_words=120,
        collection=writing.source_collection(team, _membership(team, reader), lib["board"].pk))
    assert [d.pk for d in writing.sources(project, reader)] == [lib["secret"].pk]
    writing.add_section(project, "The merger with Halvorsen Shipping", 120)
    collections.revoke(lib["board"], reader)
    spy = Spy(get_backend())
    monkeypatch.setattr("apps.writing.services.get_backend", lambda: spy)
    project = writing.start_write(project, reader)
    assert jobs.run(project.job.pk, project.job.celery_task_id) == "failed"
    project.refresh_from_db()
    assert project.error == writing.LOST_COLLECTION
    assert not spy.sent and not project.drawn.exists()
    section = project.sections.get()
    assert section.text == "" and section.citations == []
    assert references(project, [section]) == []


def test_the_api_writes_only_from_what_the_key_may_read(team, lib):
    """Write items take document_ids and/or a collection, checked against what the key (or
    session) may read; what it may not is refused as unknown, whoever owns it."""
    board, shared, secret, open_doc = lib["board"], lib["shared"], lib["secret"], lib["open"]
    _, token = keys.create_key(team, lib["owner"], "board", ["read", "write"],
                               collections=[board])
    board_key = APIClient()
    board_key.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    other = MembershipFactory(role=Role.OWNER).team
    elsewhere = collections.create(other, "Elsewhere")

    def write(api, **sources):
        return api.post(_api(team, "batches/"), {"kind": "write", "items": [
            {"instruction": "A memo on the merger.", "target_words": 200, **sources}]},
            format="json")

    for who, api, refused in [
            ("board key", board_key, [{"collection": shared.pk}, {"collection": elsewhere.pk},
                                      {"document_ids": [open_doc.pk]},
                                      {"collection": board.pk, "document_ids": [open_doc.pk]}]),
            *[(name, c, [{"collection": board.pk}, {"document_ids": [secret.pk]}])
              for name, c in _callers(team, lib).items()]]:
        for sources in refused:
            response = write(api, **sources)
            assert response.status_code == 400, (who, sources)
            body = str(response.json())
            assert "unknown" in body and secret.title not in body and "Board" not in body, (
                who, sources, body)
    bad = write(board_key, collection="board")
    assert bad.status_code == 400 and "collection must be a collection id" in str(bad.json())
    assert not team.batches.exists()
    made = write(board_key, collection=board.pk, document_ids=[secret.pk])
    assert made.status_code == 201, made.json()
    item = team.batches.get().items.get()
    assert item.input["collection"] == board.pk and item.input["document_ids"] == [secret.pk]
    # The batch names the board: hidden from those who may not read it.
    for who, api in _callers(team, lib).items():
        assert api.get(_api(team, f"batches/{made.json()['id']}/")).status_code == 404, who
    client = APIClient()
    client.force_login(lib["reader"])
    assert client.get(_api(team, f"batches/{made.json()['id']}/")).status_code == 200


def test_the_upload_box_follows_the_collection_filter(client, team, lib):
    """Viewing one collection, the upload goes into it by default if the person may add to
    it (the select is swapped with the filtered table: hx-select-oob), else as before."""
    board = lib["board"]

    def chosen(who, shown):
        client.force_login(lib[who])
        page = client.get(_doc_url("documents:library", team), {"collection": shown})
        into = page.content.decode().split('data-testid="upload-collection"', 1)[1]
        into = into.split("</select>", 1)[0]
        return re.findall(r'<option value="(\d*)" selected', into)

    assert chosen("writer", board.pk) == [str(board.pk)]
    assert chosen("writer", "") == [] and chosen("writer", "none") == []
    assert chosen("reader", board.pk) == []  # reads the board, cannot add to it
    assert chosen("member", lib["shared"].pk) == [str(lib["shared"].pk)]
    # What the HTMX filter swaps in with the table (id and attribute) is in the page.
    page = client.get(_doc_url("documents:library", team)).content.decode()
    assert 'hx-select-oob="#upload-into"' in page and 'id="upload-into"' in page
    # The upload the box then makes lands in the collection.
    client.force_login(lib["writer"])
    added = _ingested(_upload(client, team, "agenda.txt", "Agenda of the board.", board))
    assert added.filing.collection_id == board.pk
