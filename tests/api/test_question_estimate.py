"""A dry run: what a question would cost with each strategy, before anything runs."""

from __future__ import annotations

import pytest

from apps.documents.models import DocStatus
from apps.jobs.models import Job
from tests.api.conftest import ready_document, url

pytestmark = pytest.mark.django_db
ESTIMATE = "questions/estimate/"


def test_a_read_key_gets_every_strategys_cost_and_autos_pick(api, team, read_key):
    document = ready_document(team, text="The quay was rebuilt by Kessler Marine Works. " * 400)
    document.tokens = 4000
    document.save(update_fields=["tokens"])
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {read_key[1]}")
    response = api.post(url(team, ESTIMATE), {"question": "Who rebuilt the quay?",
                                              "document_ids": [document.pk]}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["document_tokens"] == 4000
    strategies = {e["strategy"] for e in body["estimates"]}
    assert {"rag", "xl3m", "coa"} <= strategies
    assert body["auto"]["strategy"] in strategies and body["auto"]["reason"]
    assert all(e["prompt_tokens"] > 0 and e["calls"] >= 1 for e in body["estimates"])
    assert not Job.objects.exists()  # nothing ran


@pytest.mark.parametrize(("body", "message"), [
    ({"question": "  ", "document_ids": None}, "empty"),
    ({"question": "Who?", "document_ids": [999999]}, "No such document"),
])
def test_bad_requests_say_why(key_client, team, body, message):
    document = ready_document(team)
    if body["document_ids"] is None:
        body["document_ids"] = [document.pk]
    response = key_client.post(url(team, ESTIMATE), body, format="json")
    assert response.status_code == 400
    assert message in response.content.decode()


def test_another_teams_document_is_not_estimated(key_client, team, other_team_key):
    theirs = ready_document(other_team_key[0].team, title="Theirs")
    response = key_client.post(url(team, ESTIMATE), {"question": "Who?",
                                                     "document_ids": [theirs.pk]}, format="json")
    assert response.status_code == 400 and "No such document" in response.content.decode()


def test_a_document_still_ingesting_is_named(key_client, team):
    document = ready_document(team)
    document.status = DocStatus.PROCESSING
    document.save(update_fields=["status"])
    response = key_client.post(url(team, ESTIMATE), {"question": "Who?",
                                                     "document_ids": [document.pk]}, format="json")
    assert response.status_code == 400 and "Not ready yet: Lighthouse" in response.content.decode()
