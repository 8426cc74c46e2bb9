"""The batch pages: the list (the API's batches), creating a batch from the form, the
preview, a batch's progress, cancel, retry and downloads; team isolation and roles."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.api import services
from apps.api.models import Batch, BatchStatus, ItemStatus
from apps.jobs.models import Job, Status
from tests.api.conftest import ready_document
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def url(team, name: str = "list", **kwargs) -> str:
    return reverse(f"batches:{name}", kwargs={"team_slug": team.slug, **kwargs})


@pytest.fixture
def document(team):
    return ready_document(team, title="Harbour report")


def make_batch(team, document, questions=("Who keeps the light?",), user=None):
    return services.submit_batch(team, {"kind": "qa", "questions": list(questions),
                                        "document_ids": [document.pk]}, user=user).batch


def test_a_csv_upload_creates_the_batch_the_api_lists(client_for, team, member, document):
    client = client_for(member)
    csv_file = SimpleUploadedFile("q.csv", b"question\nWho keeps the light?\nWhen?\n",
                                  content_type="text/csv")
    response = client.post(url(team), {"kind": "qa", "file": csv_file, "strategy": "rag",
                                       "documents": [document.pk], "name": "Harbour",
                                       "answer_tokens": "16"})
    batch = Batch.objects.get()
    assert response.status_code == 302 and response.url == url(team, "detail", pk=batch.pk)
    assert (batch.total, batch.name, batch.created_by) == (2, "Harbour", member)
    assert [(i.input["strategy"], i.input["answer_tokens"]) for i in batch.items.all()] == [
        ("rag", 16), ("rag", 16)]
    assert Job.objects.filter(kind="batch_item").count() == 2
    api = client.get(f"/api/v1/teams/{team.slug}/batches/")
    assert [b["id"] for b in api.json()["results"]] == [batch.pk]
    page = client.get(url(team)).content.decode()
    assert f"Batch #{batch.pk}: Harbour" in page and member.display_name in page


def test_bad_input_is_shown_and_nothing_runs(client_for, team, member, document):
    client = client_for(member)
    bad = SimpleUploadedFile("q.csv", "question\nQué?\n".encode("latin-1"))
    response = client.post(url(team), {"kind": "qa", "file": bad, "strategy": "auto",
                                       "documents": [document.pk]})
    assert response.status_code == 400
    assert "not UTF-8 text: line 2" in response.content.decode()
    response = client.post(url(team), {"kind": "qa", "text": "Who?", "strategy": "auto",
                                       "documents": [999999]})
    assert response.status_code == 400 and "Unknown document id 999999" in response.content.decode()
    assert not Batch.objects.exists() and not Job.objects.exists()


def test_the_preview_counts_items_and_estimates_without_running(client_for, team, member,
                                                                document):
    client = client_for(member)
    response = client.post(url(team, "preview"), {
        "kind": "qa", "text": "Who keeps the light?\nWhen was it built?", "strategy": "auto",
        "documents": [document.pk]}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200 and 'data-testid="batch-estimate"' in body
    assert "2 items" in body and "<html" not in body  # the partial only
    missing = client.post(url(team, "preview"), {"kind": "qa", "text": "Who?",
                                                 "strategy": "auto"})
    assert "Pick at least one document" in missing.content.decode()
    assert not Batch.objects.exists() and not Job.objects.exists()


def test_another_teams_batch_is_404_everywhere(client_for, team, document, outsider):
    batch = make_batch(team, document)
    client = client_for(outsider)
    their_team = outsider.memberships.get().team
    assert client.get(url(team)).status_code == 404
    for name in ("detail", "progress"):
        assert client.get(url(their_team, name, pk=batch.pk)).status_code == 404
    assert client.get(url(their_team, "download", pk=batch.pk, fmt="csv")).status_code == 404
    for name in ("cancel", "retry"):
        assert client.post(url(their_team, name, pk=batch.pk)).status_code == 404
    assert Batch.objects.get().status == BatchStatus.QUEUED


def test_a_viewer_reads_but_cannot_create_cancel_or_retry(client_for, team, document, viewer):
    batch = make_batch(team, document)
    client = client_for(viewer)
    page = client.get(url(team))
    assert page.status_code == 200 and 'data-testid="batch-form"' not in page.content.decode()
    detail = client.get(url(team, "detail", pk=batch.pk)).content.decode()
    assert "Who keeps the light?" in detail and "Cancel</button>" not in detail
    assert client.post(url(team), {"kind": "qa", "text": "Who?", "strategy": "auto",
                                   "documents": [document.pk]}).status_code == 403
    assert client.post(url(team, "preview"), {"kind": "qa"}).status_code == 403
    assert client.post(url(team, "cancel", pk=batch.pk)).status_code == 403
    assert client.get(url(team, "download", pk=batch.pk, fmt="xlsx")).status_code == 200
    assert Batch.objects.count() == 1 and Batch.objects.get().status == BatchStatus.QUEUED


def test_progress_polls_until_the_batch_ends_then_stops(client_for, team, member, document):
    batch = make_batch(team, document, questions=["Who keeps the light?", "When?"])
    client = client_for(member)
    live = client.get(url(team, "progress", pk=batch.pk))
    assert live.status_code == 200 and 'hx-trigger="every 2s"' in live.content.decode()
    client.post(url(team, "cancel", pk=batch.pk))
    batch.refresh_from_db()
    assert batch.status == BatchStatus.CANCELLED
    assert set(Job.objects.values_list("status", flat=True)) == {Status.CANCELLED}
    ended = client.get(url(team, "progress", pk=batch.pk))
    assert ended.status_code == 286  # htmx stops polling
    assert "hx-trigger" not in ended.content.decode()


def test_results_render_model_text_safely_with_citations_to_the_viewer(client_for, team,
                                                                        member, document):
    batch = make_batch(team, document)
    item = batch.items.get()
    item.mark(ItemStatus.SUCCEEDED, result={
        "answer": "**Oskar Brandt** <script>alert(1)</script> [x](javascript:alert(2))",
        "citations": [{"n": 1, "document_id": document.pk, "start": 4, "end": 20,
                       "quote": "lighthouse keeper", "title": "Harbour report", "page": 1}],
        "usage": {"prompt_tokens": 80, "completion_tokens": 9}})
    services.refresh_batch(batch.pk)
    body = client_for(member).get(url(team, "detail", pk=batch.pk)).content.decode()
    assert "<strong>Oskar Brandt</strong>" in body
    assert "<script>alert" not in body and "&lt;script&gt;alert(1)" in body
    assert 'href="javascript:' not in body
    viewer = reverse("documents:detail", kwargs={"team_slug": team.slug, "pk": document.pk})
    assert f'href="{viewer}?start=4&amp;end=20"' in body
    assert "80 → 9" in body


def test_an_abstained_items_passages_are_labelled_closest_not_support(client_for, team,
                                                                      member, document):
    batch = make_batch(team, document, questions=("Who keeps the light?", "Who built it?"))
    cited = {"n": 1, "document_id": document.pk, "start": 4, "end": 20,
             "quote": "lighthouse keeper", "title": "Harbour report", "page": 1}
    first, second = batch.items.order_by("index")
    first.mark(ItemStatus.SUCCEEDED, result={
        "answer": "The documents don't appear to answer this.", "abstained": True,
        "grounded": False, "citations": [cited]})
    second.mark(ItemStatus.SUCCEEDED, result={
        "answer": "Oskar Brandt.", "abstained": False, "grounded": True, "citations": [cited]})
    services.refresh_batch(batch.pk)
    body = client_for(member).get(url(team, "detail", pk=batch.pk)).content.decode()
    assert body.count('data-testid="closest-label"') == 1
    assert body.count('class="citations closest"') == 1
    assert body.index('id="item-0"') < body.index("closest-label") < body.index('id="item-1"')


def test_retry_failed_items_from_the_page(client_for, team, member, document):
    batch = make_batch(team, document, questions=["Who keeps the light?", "When?"])
    first, second = batch.items.order_by("index")
    first.mark(ItemStatus.SUCCEEDED, result={"answer": "Oskar."})
    Job.objects.filter(pk=second.job_id).update(status=Status.FAILED, error="backend down")
    second.mark(ItemStatus.FAILED, error="backend down")
    services.refresh_batch(batch.pk)
    client = client_for(member)
    assert "Retry failed items" in client.get(url(team, "detail", pk=batch.pk)).content.decode()
    client.post(url(team, "retry", pk=batch.pk))
    batch.refresh_from_db()
    second.refresh_from_db()
    assert batch.status == BatchStatus.RUNNING and second.status == ItemStatus.QUEUED


def test_downloads_in_three_formats(client_for, team, member, document):
    batch = make_batch(team, document, questions=["=1+1"])
    client = client_for(member)
    response = client.get(url(team, "download", pk=batch.pk, fmt="csv"))
    assert response["Content-Disposition"] == f'attachment; filename="batch-{batch.pk}.csv"'
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0]["input"] == "'=1+1" and rows[0]["status"] == "queued"
    jsonl = client.get(url(team, "download", pk=batch.pk, fmt="jsonl"))
    assert b'"question": "=1+1"' in jsonl.content
    xlsx = client.get(url(team, "download", pk=batch.pk, fmt="xlsx"))
    assert xlsx.content[:2] == b"PK"
    assert client.get(f"{url(team, 'detail', pk=batch.pk)}results.pdf").status_code == 404


def test_the_nav_links_to_batches(client_for, team, member):
    MembershipFactory(team=team)
    body = client_for(member).get(reverse("teams:dashboard", kwargs={"team_slug": team.slug}))
    assert f'href="{url(team)}"' in body.content.decode()


def test_write_items_pasted_as_jsonl_make_a_write_batch(client_for, team, member):
    client = client_for(member)
    text = ('{"instruction": "A 300-word note on tides"}\n'
            '{"instruction": "A poem about gulls", "target_words": 80}\n')
    response = client.post(url(team), {"kind": "write", "text": text, "strategy": "auto"})
    batch = Batch.objects.get()
    assert response.status_code == 302 and (batch.kind, batch.total) == ("write", 2)
    assert [i.input["target_words"] for i in batch.items.all()] == [300, 80]
    bad = client.post(url(team), {"kind": "write", "text": "instruction,colour\nA poem,red\n",
                                  "strategy": "auto"})
    assert bad.status_code == 400 and "Unknown column(s) colour" in bad.content.decode()
    assert Batch.objects.count() == 1
