"""Contract tests: every endpoint's status codes, bodies and effects; bad input refused
with a precise message and nothing enqueued."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from apps.api import keys
from apps.api.models import ApiKey, Batch, BatchItem
from apps.documents.models import Document
from apps.jobs import services as jobs
from apps.jobs.models import Job
from tests.api.conftest import ready_document, url

pytestmark = [
    pytest.mark.django_db,
    # The JSONL view streams with an async iterator (ASGI); the test client is synchronous.
    pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume"),
]


# -- Keys and authentication -------------------------------------------------------------------


def test_a_key_is_hashed_has_a_visible_prefix_and_records_its_use(key_client, write_key, team):
    key, token = write_key
    assert token.startswith(key.prefix + "_") and key.prefix.startswith("sk_live_")
    stored = ApiKey.objects.get(pk=key.pk)
    assert token not in json.dumps(list(ApiKey.objects.values()), default=str)
    assert stored.secret_hash != token and len(stored.secret_hash) == 64
    assert stored.last_used_at is None
    response = key_client.get(url(team, "documents/"))
    assert response.status_code == 200
    stored.refresh_from_db()
    assert stored.last_used_at is not None


def test_teams_endpoint_lists_the_keys_team_or_the_users_teams(key_client, team, client_for,
                                                               owner):
    assert key_client.get("/api/v1/teams/").json() == [
        {"slug": team.slug, "name": team.name, "role": "api-key"}]
    session = APIClient()
    session.force_login(owner)
    assert {"slug": team.slug, "name": team.name, "role": "owner"} in \
        session.get("/api/v1/teams/").json()


@pytest.mark.parametrize("header, message", [
    ("Bearer sk_live_nothing_here", "Invalid API key."),
    ("Bearer", "Malformed Authorization header"),
    (None, "Authentication credentials were not provided."),
])
def test_bad_credentials_are_401_with_a_reason(api, team, header, message):
    if header:
        api.credentials(HTTP_AUTHORIZATION=header)
    response = api.get(url(team, "documents/"))
    assert response.status_code == 401
    assert message in response.json()["detail"]
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_key_is_refused_and_nothing_is_enqueued(api, team, write_key, document):
    key, token = write_key
    keys.revoke(key)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    before = Job.objects.count()
    response = api.post(url(team, "batches/"), {"kind": "qa", "questions": ["Who?"],
                                                "document_ids": [document.pk]}, format="json")
    assert response.status_code == 401
    assert f"This API key ({key.prefix}) was revoked." == response.json()["detail"]
    assert Job.objects.count() == before and not Batch.objects.exists()


def test_keys_are_managed_on_the_team_settings_page(client_for, owner, team, member):
    client = client_for(owner)
    response = client.post(f"/t/{team.slug}/api-keys/new/", {"name": "nightly", "write": "on"})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    key = ApiKey.objects.get(name="nightly")
    token = response.context["token"]
    assert token in response.content.decode() and key.scopes == ["read", "write"]
    page = client.get(f"/t/{team.slug}/settings/").content.decode()
    assert key.prefix in page and token not in page and "never" in page
    client.post(f"/t/{team.slug}/api-keys/{key.pk}/revoke/")
    key.refresh_from_db()
    assert key.revoked_at is not None
    # A member cannot make keys.
    assert client_for(member).post(f"/t/{team.slug}/api-keys/new/", {"name": "x"}) \
        .status_code == 403


def test_session_auth_works_for_the_browser(team, member, document):
    session = APIClient(enforce_csrf_checks=True)
    session.force_login(member)
    assert session.get(url(team, f"documents/{document.pk}/")).json()["title"] == "Lighthouse"
    # Writes with the session need the CSRF token, like every form of the site.
    response = session.post(url(team, "batches/"), {"kind": "qa"}, format="json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]


def test_the_throttle_counts_per_key(api, team, write_key, read_key, settings):
    settings.API_THROTTLE_RATE = "3/minute"
    from django.core.cache import cache

    cache.clear()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {write_key[1]}")
    codes = [api.get(url(team, "batches/")).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert "Request was throttled" in api.get(url(team, "batches/")).json()["detail"]
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {read_key[1]}")
    assert other.get(url(team, "batches/")).status_code == 200  # its own bucket
    cache.clear()


# -- Documents ---------------------------------------------------------------------------------


def test_upload_queues_ingestion_and_a_second_upload_of_the_same_file_is_200(key_client, team):
    data = b"The harbour master is Ines Duarte.\n\nShe keeps a ledger of every ship."
    response = key_client.post(url(team, "documents/"),
                               {"file": SimpleUploadedFile("harbour.txt", data)},
                               format="multipart")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["title"] == "harbour" and body["status"] == "queued" and body["kind"] == "text"
    document = Document.objects.get(pk=body["id"])
    assert document.job.kind == "ingest_document"
    again = key_client.post(url(team, "documents/"),
                            {"file": SimpleUploadedFile("copy.txt", data)}, format="multipart")
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    # Ingest it (real extraction and embeddings), then read page 1.
    assert jobs.run(document.job.pk, document.job.celery_task_id) == "succeeded"
    page = key_client.get(url(team, f"documents/{document.pk}/pages/1/")).json()
    assert page["page"] == 1 and "Ines Duarte" in page["text"] and page["pages"] >= 1


@pytest.mark.parametrize("files, fields, status, message", [
    ([], {}, 400, "Send exactly one file"),
    ([("empty.txt", b"")], {}, 400, "The file is empty"),
    ([("x.exe", b"MZ\x90\x00\x03" + b"\x00" * 300)], {}, 400, ""),
    ([("a.txt", b"a"), ("b.txt", b"b")], {}, 400, "got 2"),
    ([("a.txt", b"hello")], {"title": "x"}, 400, "Unknown field"),
])
def test_bad_uploads_are_refused_and_nothing_is_stored(key_client, team, files, fields, status,
                                                       message):
    data = {"file": [SimpleUploadedFile(n, d) for n, d in files], **fields}
    response = key_client.post(url(team, "documents/"), data, format="multipart")
    assert response.status_code == status, response.content
    assert message in json.dumps(response.json())
    assert not Document.objects.exists() and not Job.objects.exists()


def test_too_large_upload_is_413(key_client, team, settings):
    settings.DOCUMENT_MAX_BYTES = 10
    response = key_client.post(url(team, "documents/"),
                               {"file": SimpleUploadedFile("big.txt", b"x" * 100)},
                               format="multipart")
    assert response.status_code == 413 and "the limit is" in response.json()["file"][0]


def test_list_filters_paginates_and_refuses_unknown_filters(key_client, team):
    ready_document(team, title="Alpha report")
    ready_document(team, text="Other text.", title="Beta memo")
    Document.objects.filter(title="Beta memo").update(status="failed")
    body = key_client.get(url(team, "documents/"), {"page_size": 1}).json()
    assert body["count"] == 2 and len(body["results"]) == 1 and body["next"]
    assert [d["title"] for d in key_client.get(url(team, "documents/"),
                                               {"status": "failed"}).json()["results"]] == \
        ["Beta memo"]
    assert [d["title"] for d in key_client.get(url(team, "documents/"),
                                               {"q": "alpha"}).json()["results"]] == \
        ["Alpha report"]
    bad = key_client.get(url(team, "documents/"), {"status": "lost"})
    assert bad.status_code == 400 and "status" in bad.json()
    bad = key_client.get(url(team, "documents/"), {"colour": "red"})
    assert bad.status_code == 400 and "Unknown field" in bad.json()["colour"][0]


def test_get_page_text_and_delete(key_client, team, document):
    detail = key_client.get(url(team, f"documents/{document.pk}/")).json()
    assert detail["id"] == document.pk and "text" not in detail
    page2 = key_client.get(url(team, f"documents/{document.pk}/pages/2/")).json()
    assert page2["start"] == document.page_starts[1] and \
        page2["text"] == document.text[document.page_starts[1]:]
    missing = key_client.get(url(team, f"documents/{document.pk}/pages/3/"))
    assert missing.status_code == 404 and "No page 3" in missing.json()["detail"]
    assert key_client.delete(url(team, f"documents/{document.pk}/")).status_code == 204
    assert not Document.objects.filter(pk=document.pk).exists()
    assert key_client.get(url(team, f"documents/{document.pk}/")).status_code == 404


def test_a_documents_language_and_ocr_pages_are_in_its_rows(key_client, team, document):
    Document.objects.filter(pk=document.pk).update(language="de", ocr_pages=[2],
                                                   unreadable_pages=[])
    detail = key_client.get(url(team, f"documents/{document.pk}/")).json()
    assert (detail["language"], detail["ocr_pages"], detail["unreadable_pages"]) == ("de", [2], [])
    listed = key_client.get(url(team, "documents/")).json()["results"]
    assert [(d["id"], d["ocr_pages"]) for d in listed] == [(document.pk, [2])]


def test_a_listed_row_is_the_documents_own_representation(key_client, team, owner, document):
    # The list serialises plain rows; a document's own page, its model instance. Every field
    # the same: timestamps, JSON lists, nulls, the collection's id and a row in none.
    from apps.collections import services as collections

    Document.objects.filter(pk=document.pk).update(ocr_pages=[2], slow_pages=[1],
                                                   error_code="", language="de")
    filed = ready_document(team, title="Filed")
    shelf = collections.create(team, "Shelf")
    collections.move(team, team.memberships.get(user=owner), filed, shelf)
    listed = key_client.get(url(team, "documents/")).json()["results"]
    assert {row["id"]: row["collection"] for row in listed} == {document.pk: None,
                                                                filed.pk: shelf.pk}
    for row in listed:
        assert row == key_client.get(url(team, f"documents/{row['id']}/")).json()


def test_page_text_of_a_document_not_ingested_is_409(key_client, team, document):
    Document.objects.filter(pk=document.pk).update(status="processing")
    response = key_client.get(url(team, f"documents/{document.pk}/pages/1/"))
    assert response.status_code == 409 and "not ready" in response.json()["detail"]


# -- Batches -----------------------------------------------------------------------------------


def _post(client, team, body, **headers):
    return client.post(url(team, "batches/"), body, format="json", **headers)


def test_a_qa_batch_makes_one_llm_job_per_item(key_client, team, document, write_key):
    response = _post(key_client, team, {
        "kind": "qa", "name": "smoke", "questions": ["Who keeps the light?", "Since when?"],
        "document_ids": [document.pk], "strategy": "full", "options": {"answer_tokens": 8}})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["total"] == 2 and body["status"] == "queued" and body["percent"] == 0
    batch = Batch.objects.get(pk=body["id"])
    assert batch.api_key == write_key[0] and batch.created_by == write_key[0].created_by
    items = list(batch.items.select_related("job"))
    assert [i.input for i in items] == [
        {"question": q, "document_ids": [document.pk], "strategy": "full", "answer_tokens": 8,
         "options": {}} for q in ("Who keeps the light?", "Since when?")]
    assert all(i.job.kind == "batch_item" and i.job.queue == "batch" for i in items)


def test_each_document_makes_question_times_document_items(key_client, team, document):
    other = ready_document(team, text="Another text.", title="Other")
    response = _post(key_client, team, {"kind": "qa", "questions": ["A?", "B?"],
                                        "document_ids": [document.pk, other.pk],
                                        "each_document": True})
    assert response.json()["total"] == 4


def test_an_item_runs_and_results_come_as_pages_and_jsonl(key_client, team, document):
    body = _post(key_client, team, {"kind": "qa", "items": [
        {"question": "Who is the lighthouse keeper?", "document_ids": [document.pk],
         "strategy": "full", "options": {"answer_tokens": 12}}]}).json()
    item = BatchItem.objects.select_related("job").get(batch_id=body["id"])
    assert jobs.run(item.job.pk, item.job.celery_task_id) == "succeeded", item.job.error
    batch = key_client.get(url(team, f"batches/{body['id']}/")).json()
    assert batch["status"] == "succeeded" and batch["succeeded"] == 1 and batch["percent"] == 100
    assert batch["finished_at"]
    page = key_client.get(url(team, f"batches/{body['id']}/results/")).json()
    row = page["results"][0]
    assert page["count"] == 1 and row["status"] == "succeeded" and row["result"]["answer"]
    assert row["result"]["strategy"] == "full" and row["progress"]["total"] >= 1
    assert row["result"]["usage"]["completion_tokens"] <= 12
    # The grounding check's verdict: both flags always present, and never both true.
    result = row["result"]
    assert isinstance(result["grounded"], bool) and isinstance(result["abstained"], bool)
    assert not (result["grounded"] and result["abstained"])
    assert result["grounding"]["strictness"] == "normal" and result["grounding"]["verdict"]
    for c in row["result"]["citations"]:
        assert document.text[c["start"]:c["end"]].startswith(c["quote"][:50])
    stream = key_client.get(url(team, f"batches/{body['id']}/results.jsonl"))
    assert stream["Content-Type"] == "application/x-ndjson" and stream.streaming
    lines = [json.loads(x) for x in b"".join(stream).splitlines()]
    assert lines == [{"batch_id": body["id"], "index": 0, "kind": "qa", "status": "succeeded",
                      "input": item.input, "result": row["result"], "error": None}]
    assert key_client.get(url(team, f"batches/{body['id']}/results/"),
                          {"status": "failed"}).json()["count"] == 0


def test_an_item_whose_document_was_deleted_fails_with_the_reason(key_client, team, document):
    body = _post(key_client, team, {"kind": "qa", "questions": ["Who?"],
                                    "document_ids": [document.pk]}).json()
    document.delete()
    item = BatchItem.objects.select_related("job").get(batch_id=body["id"])
    assert jobs.run(item.job.pk, item.job.celery_task_id) == "failed"
    item.refresh_from_db()
    assert item.status == "failed" and "no longer exist" in item.error
    assert Batch.objects.get(pk=body["id"]).status == "failed"


def test_cancel_stops_queued_items(key_client, team, document):
    body = _post(key_client, team, {"kind": "qa", "questions": ["A?", "B?", "C?"],
                                    "document_ids": [document.pk]}).json()
    first = BatchItem.objects.select_related("job").get(batch_id=body["id"], index=0)
    assert jobs.run(first.job.pk, first.job.celery_task_id) == "succeeded"
    response = key_client.post(url(team, f"batches/{body['id']}/cancel/"))
    assert response.status_code == 200
    batch = response.json()
    assert (batch["status"], batch["succeeded"], batch["cancelled"]) == ("cancelled", 1, 2)
    assert batch["finished_at"]
    assert set(Job.objects.filter(kind="batch_item").values_list("status", flat=True)) == \
        {"succeeded", "cancelled"}
    # Cancelling again changes nothing.
    assert key_client.post(url(team, f"batches/{body['id']}/cancel/")).json()["cancelled"] == 2


def test_retry_runs_the_failed_items_again_and_reopens_the_batch(key_client, team, document):
    body = _post(key_client, team, {"kind": "qa", "questions": ["A?", "B?"],
                                    "document_ids": [document.pk]}).json()
    first, second = BatchItem.objects.select_related("job").filter(
        batch_id=body["id"]).order_by("index")
    assert jobs.run(first.job.pk, first.job.celery_task_id) == "succeeded"
    text = document.text
    type(document).objects.filter(pk=document.pk).update(status="failed")  # not readable now
    assert jobs.run(second.job.pk, second.job.celery_task_id) == "failed"
    assert key_client.get(url(team, f"batches/{body['id']}/")).json()["status"] == "partial"
    type(document).objects.filter(pk=document.pk).update(status="ready", text=text)
    response = key_client.post(url(team, f"batches/{body['id']}/retry/"))
    assert response.status_code == 200
    batch = response.json()
    assert (batch["status"], batch["succeeded"], batch["failed"]) == ("running", 1, 0)
    assert batch["finished_at"] is None
    second.job.refresh_from_db()
    assert jobs.run(second.job.pk, second.job.celery_task_id) == "succeeded"
    again = key_client.get(url(team, f"batches/{body['id']}/")).json()
    assert (again["status"], again["succeeded"]) == ("succeeded", 2)
    # Nothing failed now: retrying changes nothing.
    assert key_client.post(url(team, f"batches/{body['id']}/retry/")).json()["succeeded"] == 2


def test_idempotency_key_returns_the_first_batch_and_refuses_another_body(key_client, team,
                                                                          document):
    body = {"kind": "qa", "questions": ["Who?"], "document_ids": [document.pk]}
    first = _post(key_client, team, body, HTTP_IDEMPOTENCY_KEY="run-42")
    again = _post(key_client, team, body, HTTP_IDEMPOTENCY_KEY="run-42")
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert Batch.objects.count() == 1 and Job.objects.count() == 1
    other = _post(key_client, team, {**body, "questions": ["Why?"]},
                  HTTP_IDEMPOTENCY_KEY="run-42")
    assert other.status_code == 422
    assert "was used for a different request" in other.json()["detail"]
    assert Job.objects.count() == 1


def test_list_and_get_batches(key_client, team, document):
    ids = [_post(key_client, team, {"kind": "qa", "questions": [q],
                                    "document_ids": [document.pk]}).json()["id"]
           for q in ("A?", "B?")]
    listed = key_client.get(url(team, "batches/")).json()
    assert [b["id"] for b in listed["results"]] == ids[::-1]
    assert all(b["webhook_secret"] is None for b in listed["results"])
    assert key_client.get(url(team, "batches/999999/")).status_code == 404


BAD_BATCHES = [
    ("not json", "{nope", 400, "JSON parse error"),
    ("a list", [], 400, "must be a JSON object"),
    ("unknown top-level field", {"kind": "qa", "questions": ["Q?"], "colour": "red"}, 400,
     "Unknown field"),
    ("unknown kind", {"kind": "dance", "items": [{}]}, 400, "is not a valid choice"),
    ("no items", {"kind": "qa"}, 400, "The batch has no items"),
    ("invalid strategy", {"kind": "qa", "questions": ["Q?"], "strategy": "telepathy"}, 400,
     "is not a valid choice"),
    ("invalid item strategy", {"kind": "qa", "items": [{"question": "Q?", "document_ids": [1],
                                                        "strategy": "telepathy"}]}, 400,
     "item 0: unknown strategy “telepathy”"),
    ("unknown item field", {"kind": "qa", "items": [{"question": "Q?", "document_ids": [1],
                                                     "temperature": 2}]}, 400,
     "item 0: unknown field(s) temperature"),
    ("empty question", {"kind": "qa", "questions": ["  "]}, 400, "item 0: question is empty"),
    ("punctuation question", {"kind": "qa", "questions": ["?!…"]}, 400,
     "item 0: question: the question has no words"),
    ("question too long", {"kind": "qa", "questions": ["Why? " * 2_000]}, 400,
     "item 0: question: the question is too long (9,999 characters; at most 4,000)"),
    ("unknown option", {"kind": "qa", "questions": ["Q?"], "strategy": "full",
                        "options": {"top_k": 3}}, 400, "unknown option(s) top_k"),
    ("absurd compression", {"kind": "qa", "questions": ["Q?"], "strategy": "rag",
                            "options": {"compress": 50}}, 400,
     "option compress must be a ratio above 1 and at most 10"),
    ("unknown document", {"kind": "qa", "questions": ["Q?"], "document_ids": [987654]}, 400,
     "item 0: unknown document id(s) 987654"),
    # Found by schemathesis: PostgreSQL refuses both in text, and they gave a 500.
    ("NUL in an item", {"kind": "compress", "items": [{"text": "a\x00b", "ratio": 2}]}, 400,
     "item 0: text contains a NUL character"),
    ("lone surrogate in an item", '{"kind": "write", "items": [{"instruction": "A \\ud800"}]}',
     400, "item 0: instruction is not valid Unicode (a lone surrogate)"),
    ("each_document an object", {"kind": "qa", "questions": ["Q?"], "each_document": {}}, 400,
     "Must be a valid boolean"),
    ("bad document ids", {"kind": "qa", "items": [{"question": "Q?", "document_ids": "1"}]},
     400, "document_ids must be a non-empty list"),
    ("compress without ratio", {"kind": "compress", "items": [{"text": "Some text."}]}, 400,
     "exactly one of a ratio or a token budget"),
    ("compress bad ratio", {"kind": "compress", "items": [{"text": "T", "ratio": 0.5}]}, 400,
     "the ratio must be greater than 1"),
    ("compress absurd budget", {"kind": "compress", "items": [{"text": "T",
                                                              "target_tokens": 10**40}]}, 400,
     "item 0: the token budget is too large: at most 1,000,000 tokens"),
    ("compress absurd ratio", {"kind": "compress", "items": [{"text": "T", "ratio": 1e40}]},
     400, "item 0: a ratio above 100 is absurd"),
    ("compress ratio of 400 digits",
     '{"kind": "compress", "items": [{"text": "T", "ratio": 1' + "0" * 400 + '}]}', 400,
     "item 0: a ratio above 100 is absurd"),
    ("compress infinite ratio", '{"kind": "compress", "items": [{"text": "T", "ratio": 1e400}]}',
     400, "Value must be valid JSON"),
    ("qa compress option of 400 digits", {"kind": "qa", "questions": ["Q?"],
                                          "options": {"compress": 10**400}}, 400,
     "compress must be a ratio above 1 and at most 10"),
    ("compress unknown method", {"kind": "compress", "items": [{"text": "T", "ratio": 2,
                                                                "method": "zip"}]}, 400,
     "unknown method 'zip'"),
    ("write without instruction", {"kind": "write", "items": [{"target_words": 100}]}, 400,
     "item 0: missing instruction"),
    ("write too short", {"kind": "write", "items": [{"instruction": "A poem",
                                                     "target_words": 3}]}, 400,
     "target_words must be between 50"),
    ("questions on write", {"kind": "write", "questions": ["Q?"]}, 400, "qa batches only"),
    ("strategy on compress", {"kind": "compress", "strategy": "full",
                              "items": [{"text": "T", "ratio": 2}]}, 400,
     "strategy is for qa batches only"),
    ("private webhook", {"kind": "qa", "questions": ["Q?"], "webhook_url": "http://127.0.0.1/h"},
     400, "private address"),
    ("short webhook secret", {"kind": "qa", "questions": ["Q?"], "webhook_secret": "abc"}, 400,
     "webhook_secret"),
]


@pytest.mark.parametrize("name, body, status, message", BAD_BATCHES,
                         ids=[b[0] for b in BAD_BATCHES])
def test_bad_batches_are_refused_precisely_and_nothing_is_enqueued(key_client, team, document,
                                                                   name, body, status, message):
    if isinstance(body, dict) and body.get("kind") == "qa" and "questions" in body:
        body.setdefault("document_ids", [document.pk])
    if isinstance(body, str):
        response = key_client.post(url(team, "batches/"), body, content_type="application/json")
    else:
        response = _post(key_client, team, body)
    assert response.status_code == status, response.content
    assert message in json.dumps(response.json(), ensure_ascii=False), response.json()
    assert not Batch.objects.exists() and not Job.objects.exists()


def test_a_batch_over_the_item_limit_is_refused(key_client, team, document, settings):
    settings.API_BATCH_MAX_ITEMS = 3
    response = _post(key_client, team, {"kind": "qa", "questions": ["Q?"] * 4,
                                        "document_ids": [document.pk]})
    assert response.status_code == 400
    assert response.json()["items"] == [
        "The batch has 4 items; the limit is 3 (API_BATCH_MAX_ITEMS)."]
    assert not Job.objects.exists()


def test_another_teams_document_id_is_unknown(key_client, team, other_team_key):
    theirs = ready_document(other_team_key[0].team, title="Theirs")
    response = _post(key_client, team, {"kind": "qa", "questions": ["Q?"],
                                        "document_ids": [theirs.pk]})
    assert response.status_code == 400
    assert f"unknown document id(s) {theirs.pk}" in response.json()["items"][0]
    assert not Job.objects.exists()


def test_compress_and_write_items_are_accepted_with_valid_input(key_client, team, document):
    compress = _post(key_client, team, {"kind": "compress", "items": [
        {"text": "Long text here.", "ratio": 2},
        {"document_id": document.pk, "target_tokens": 20, "question": "Who?"}]})
    assert compress.status_code == 201, compress.content
    write = _post(key_client, team, {"kind": "write", "items": [
        {"instruction": "A short note on lighthouses", "target_words": 100}]})
    assert write.status_code == 201, write.content
    assert BatchItem.objects.get(batch_id=write.json()["id"]).input == {
        "instruction": "A short note on lighthouses", "target_words": 100}


def test_the_webhook_is_signed_and_retried_until_delivered(key_client, team, document,
                                                           settings):
    from apps.api.services import sign
    from tests.api.webhook_server import WebhookServer

    settings.API_WEBHOOK_ALLOW_PRIVATE = True
    with WebhookServer(fail_first=1) as hook:
        body = _post(key_client, team, {"kind": "qa", "questions": ["Who?"],
                                        "document_ids": [document.pk],
                                        "webhook_url": hook.url}).json()
        secret = body["webhook_secret"]
        assert len(secret) >= 32
        assert key_client.get(url(team, f"batches/{body['id']}/")).json()["webhook_secret"] \
            is None  # shown once
        item = BatchItem.objects.select_related("job").get(batch_id=body["id"])
        jobs.run(item.job.pk, item.job.celery_task_id)
        batch = Batch.objects.select_related("webhook_job").get(pk=body["id"])
        webhook = batch.webhook_job
        assert webhook.kind == "batch_webhook"
        # Transient: sent again after a backoff, with a new message.
        assert jobs.run(webhook.pk, webhook.celery_task_id) == "retrying"
        webhook.refresh_from_db()
        assert "The webhook answered 500" in webhook.message
        assert jobs.run(webhook.pk, webhook.celery_task_id) == "succeeded"
    first, second = hook.received
    assert first["body"] == second["body"]
    assert second["headers"]["X-Scriptorium-Signature"] == sign(secret, second["body"])
    assert second["json"]["event"] == "batch.finished"
    assert second["json"]["batch"]["id"] == body["id"]


def test_an_item_waits_while_its_document_is_ingested(key_client, team, document):
    body = _post(key_client, team, {"kind": "qa", "questions": ["Who?"],
                                    "document_ids": [document.pk]}).json()
    Document.objects.filter(pk=document.pk).update(status="processing")
    item = BatchItem.objects.select_related("job").get(batch_id=body["id"])
    # Transient: the job is sent again later.
    assert jobs.run(item.job.pk, item.job.celery_task_id) == "retrying"
    item.refresh_from_db()
    item.job.refresh_from_db()
    assert item.status == "queued" and item.job.status == "queued"
    assert "Retrying" in item.error


def test_a_compress_item_runs_on_the_compression_engine(key_client, team, document):
    pytest.importorskip("workers.scope")
    text = " ".join(f"Sentence {n} says the tower is painted red in spring." for n in range(12))
    body = _post(key_client, team, {"kind": "compress", "items": [
        {"text": text, "ratio": 2, "method": "deletion"}]}).json()
    item = BatchItem.objects.select_related("job").get(batch_id=body["id"])
    assert jobs.run(item.job.pk, item.job.celery_task_id) == "succeeded", item.job.error
    item.refresh_from_db()
    assert item.status == "succeeded" and item.result["text"]
    assert len(item.result["text"]) < len(text)


def test_refusals_say_why(api, team, viewer, read_key, document):
    api.force_login(viewer)
    response = api.delete(url(team, f"documents/{document.pk}/"))
    assert response.status_code == 403
    assert response.json()["detail"] == "This needs the member role or higher."
    api.logout()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {read_key[1]}")
    response = api.delete(url(team, f"documents/{document.pk}/"))
    assert response.status_code == 403
    assert response.json()["detail"] == "This API key has read scope only; this needs write."
    assert api.get("/api/v1/teams/no-such-team/documents/").status_code == 404


def test_an_item_whose_worker_died_is_sent_again_and_counted_once(key_client, team, document,
                                                                  settings):
    from datetime import timedelta

    from django.utils import timezone

    body = _post(key_client, team, {"kind": "qa", "questions": ["Who?"], "strategy": "full",
                                    "options": {"answer_tokens": 4},
                                    "document_ids": [document.pk]}).json()
    item = BatchItem.objects.select_related("job").get(batch_id=body["id"])
    lost = jobs.claim(item.job.pk, item.job.celery_task_id)  # a worker took it, then died
    item.mark("running")
    Job.objects.filter(pk=lost.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    report = jobs.sweep_lost_jobs(held=set())
    assert report.requeued_running == [lost.pk]
    job = Job.objects.get(pk=lost.pk)
    assert jobs.run(job.pk, lost.celery_task_id) == "skipped: stale or duplicate message"
    assert jobs.run(job.pk, job.celery_task_id) == "succeeded"
    batch = Batch.objects.get(pk=body["id"])
    assert (batch.status, batch.succeeded, batch.total) == ("succeeded", 1, 1)


def test_jsonl_streams_every_item_in_order_across_pages(key_client, team):
    batch = Batch.objects.create(team=team, kind="qa", total=1201)
    BatchItem.objects.bulk_create([BatchItem(batch=batch, index=i, kind="qa",
                                             input={"question": f"Q{i}?"})
                                   for i in range(1201)])
    stream = key_client.get(url(team, f"batches/{batch.pk}/results.jsonl"))
    lines = [json.loads(x) for x in b"".join(stream).splitlines()]
    assert [line["index"] for line in lines] == list(range(1201))
    assert lines[-1]["input"] == {"question": "Q1200?"} and lines[-1]["status"] == "queued"
