"""Batches are checked by arithmetic before anything is built; the JSON body has a limit; the
throttle counts batch items, not requests."""

from __future__ import annotations

import json
import time
import tracemalloc

import pytest
from rest_framework.test import APIClient

from apps.api.authentication import BatchItemThrottle
from apps.api.models import Batch
from apps.jobs.models import Job
from tests.api.conftest import ready_document, url

pytestmark = pytest.mark.django_db
MB = 1024 * 1024


def _post_raw(client, team, raw: bytes):
    return client.post(url(team, "batches/"), raw, content_type="application/json")


def test_a_batch_of_10_8_virtual_items_is_refused_by_arithmetic_in_flat_memory(
        key_client, team, document):
    # 0.6 MB of JSON: 100,000 questions asked of each of 1,000 documents.
    raw = json.dumps({"kind": "qa", "questions": ["Q?"] * 100_000,
                      "document_ids": list(range(1, 1001)), "each_document": True}).encode()
    assert len(raw) < MB
    tracemalloc.start()
    started = time.perf_counter()
    try:
        response = _post_raw(key_client, team, raw)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    print(f"10⁸ virtual items: {response.status_code} in {time.perf_counter() - started:.2f} s, "
          f"peak {peak / MB:.1f} MB")
    assert response.status_code == 400, response.content
    assert response.json()["items"] == [
        "The batch has 100,000,000 items (100,000 questions × 1,000 documents); the limit is "
        "1,000 (API_BATCH_MAX_ITEMS)."]
    # The parsed body and the response; 10⁸ item dicts would need tens of GB.
    assert peak < 48 * MB, f"peak {peak / MB:.0f} MB"
    assert not Batch.objects.exists() and not Job.objects.exists()


def test_the_count_includes_items_and_each_document_products(key_client, team, document,
                                                             settings):
    settings.API_BATCH_MAX_ITEMS = 5
    other = ready_document(team, text="Other.", title="Other")
    body = {"kind": "qa", "questions": ["A?", "B?"], "document_ids": [document.pk, other.pk],
            "each_document": True,
            "items": [{"question": "C?", "document_ids": [document.pk]}] * 2}
    response = key_client.post(url(team, "batches/"), body, format="json")
    assert response.json()["items"] == [
        "The batch has 6 items (2 questions × 2 documents + 2 items); the limit is 5 "
        "(API_BATCH_MAX_ITEMS)."]
    body["items"] = body["items"][:1]
    response = key_client.post(url(team, "batches/"), body, format="json")
    assert response.status_code == 201 and response.json()["total"] == 5


def test_questions_repeated_per_document_are_bounded_in_size(key_client, team, document,
                                                             settings):
    settings.API_JSON_MAX_BYTES = 5000
    other = ready_document(team, text="Other.", title="Other")
    body = {"kind": "qa", "questions": ["x" * 3000], "document_ids": [document.pk, other.pk],
            "each_document": True}
    response = key_client.post(url(team, "batches/"), body, format="json")
    assert response.status_code == 400
    assert response.json()["questions"] == [
        "The questions asked of each document add up to 6,000 characters; at most 5,000 "
        "(API_JSON_MAX_BYTES)."]
    body["each_document"] = False  # once each: 3,000 characters
    assert key_client.post(url(team, "batches/"), body, format="json").status_code == 201


def test_unknown_documents_are_refused_with_one_lookup(key_client, team, document,
                                                       django_assert_max_num_queries):
    body = {"kind": "qa", "questions": [f"Q{i}?" for i in range(300)],
            "document_ids": [document.pk, 987654, 987655], "each_document": True}
    with django_assert_max_num_queries(4):  # the key, its team, the documents: not per item
        response = key_client.post(url(team, "batches/"), body, format="json")
    assert response.status_code == 400
    errors = response.json()["items"]
    assert errors[0] == "item 1: unknown document id(s) 987654" and errors[-1] == "… and 580 more"


def test_a_json_body_over_the_limit_is_413(key_client, team, settings):
    settings.API_JSON_MAX_BYTES = 1000
    raw = json.dumps({"kind": "qa", "questions": ["Q?" * 500]}).encode()
    response = _post_raw(key_client, team, raw)
    assert response.status_code == 413
    assert response.json()["detail"] == (
        "The request body is larger than 0.0 MB, the limit for this address "
        "(API_JSON_MAX_BYTES).")
    assert not Batch.objects.exists()


@pytest.fixture
def clock(monkeypatch):
    """The item throttle's clock, set by the test (windows are aligned to the clock). Its
    counters need no clearing: each key (new in every test) has counters of its own."""
    now = [3600.0 * 1000 + 10]
    monkeypatch.setattr(BatchItemThrottle, "timer", lambda self: now[0])
    return now


def _questions(team, document, n: int) -> dict:
    return {"kind": "qa", "questions": [f"Q{i}?" for i in range(n)],
            "document_ids": [document.pk]}


def test_the_item_throttle_counts_items_not_requests(key_client, team, document, settings,
                                                     clock, other_team_key):
    settings.API_ITEM_THROTTLE_RATE = "5/hour"
    post = lambda n, client=key_client, t=team, d=document: client.post(  # noqa: E731
        url(t, "batches/"), _questions(t, d, n), format="json")
    assert post(3).status_code == 201
    refused = post(3)  # 6 > 5 items this hour, though only the second request
    assert refused.status_code == 429
    # Fits when this hour's 3 items have faded enough from the sliding window: the rest of
    # this window (3,590 s) and a third of the next (1,200 s).
    assert refused["Retry-After"] == "4790"
    assert refused.json()["detail"] == (
        "This batch of 3 items would pass this key's 5 batch items per 3,600 s "
        "(API_ITEM_THROTTLE_RATE). Expected available in 4790 seconds.")
    assert Batch.objects.count() == 1 and Job.objects.count() == 3  # nothing enqueued
    assert post(2).status_code == 201  # the refused items were not taken: 2 still fit
    assert post(1).status_code == 429
    # Another key has a bucket of its own.
    theirs = APIClient()
    theirs.credentials(HTTP_AUTHORIZATION=f"Bearer {other_team_key[1]}")
    their_doc = ready_document(other_team_key[0].team, title="Theirs")
    assert post(5, theirs, other_team_key[0].team, their_doc).status_code == 201
    # The window slides: half an hour into the next one, half of the 5 items still count.
    clock[0] += 3600 + 1800 - 10
    assert post(3).status_code == 429 and post(2).status_code == 201
    clock[0] += 3 * 3600
    assert post(5).status_code == 201


def test_the_request_throttle_is_atomic_across_threads(write_key, settings):
    """20 requests at once against a rate of 10: exactly 10 pass (DRF's own throttle reads
    and writes a list of timestamps, so concurrent requests all pass on the same read)."""
    from concurrent.futures import ThreadPoolExecutor
    from types import SimpleNamespace

    from apps.api.authentication import ApiKeyRateThrottle

    settings.API_THROTTLE_RATE = "10/hour"
    request = SimpleNamespace(auth=write_key[0], user=None)
    with ThreadPoolExecutor(20) as pool:
        allowed = list(pool.map(lambda _: ApiKeyRateThrottle().allow_request(request, None),
                                range(20)))
    assert allowed.count(True) == 10


def test_a_batch_larger_than_the_item_rate_is_refused_outright(key_client, team, document,
                                                               settings, clock):
    settings.API_ITEM_THROTTLE_RATE = "5/hour"
    response = key_client.post(url(team, "batches/"), _questions(team, document, 6),
                               format="json")
    assert response.status_code == 400
    assert response.json()["items"] == [
        "The batch has 6 items; this key may submit at most 5 per 3,600 s "
        "(API_ITEM_THROTTLE_RATE)."]


def test_an_idempotent_replay_takes_no_items(key_client, team, document, settings, clock):
    settings.API_ITEM_THROTTLE_RATE = "5/hour"
    body = _questions(team, document, 4)
    first = key_client.post(url(team, "batches/"), body, format="json",
                            HTTP_IDEMPOTENCY_KEY="job-1")
    again = key_client.post(url(team, "batches/"), body, format="json",
                            HTTP_IDEMPOTENCY_KEY="job-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
