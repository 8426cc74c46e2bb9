"""The Compress page: form validation, the job with the real model, result, download."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.documents.models import DocStatus, Document
from apps.jobs import services as jobs
from apps.jobs.models import Job

pytestmark = pytest.mark.django_db

TEXT = (
    "The lighthouse at Kelvidge was designed by the engineer Hester Voight and first lit on "
    "2 November 1887. Its lamp can be seen from 22 nautical miles away on a clear night. "
    "The last keeper, Thomas Grell, retired in 1979, when the light was automated. He later "
    "wrote a memoir about his thirty years on the rock, which sold 4,000 copies. "
    "<script>alert('pwned')</script> <b>Visitors</b> can climb the 117 steps every Sunday "
    "between April and October, weather permitting."
)


def _document(team, text: str = TEXT, title: str = "Lighthouse") -> Document:
    return Document.objects.create(
        team=team, title=title, original_name=f"{title}.txt", sha256=str(hash(text)),
        file="teams/x.txt", kind="text", status=DocStatus.READY, text=text,
        page_starts=[0], pages=1)


def _url(team, name: str = "index", **kwargs) -> str:
    return reverse(f"compress:{name}", kwargs={"team_slug": team.slug, **kwargs})


def _post(client, team, **data):
    form = {"target": "ratio", "ratio": "2", "method": "scope", "text": "", "question": ""}
    form.update({k: str(v) for k, v in data.items()})
    return client.post(_url(team), form)


def test_the_page_offers_the_form_and_the_teams_ready_documents(client_for, team, member):
    _document(team, title="Ready one")
    response = client_for(member).get(_url(team))
    page = response.content.decode()
    assert response.status_code == 200 and 'data-testid="compress-form"' in page
    assert "Ready one" in page
    assert reverse("compress:index", kwargs={"team_slug": team.slug}) in page  # nav link


@pytest.mark.parametrize("data, error", [
    ({"ratio": "1"}, "greater than 1"),
    ({"ratio": "0.5"}, "greater than 1"),
    ({"ratio": "-4"}, "greater than 1"),
    ({"ratio": "500"}, "absurd"),
    ({"ratio": "many"}, "Enter a number"),
    ({"ratio": ""}, "Give a ratio"),
    ({"target": "tokens", "target_tokens": ""}, "Give a token budget"),
    ({"target": "tokens", "target_tokens": "0"}, "too small: at least 4 tokens"),
    ({"target": "tokens", "target_tokens": "1" + "0" * 40}, "too large: at most 1,000,000"),
    ({"target": "tokens", "target_tokens": "2.5"}, "Enter a whole number"),
    ({"ratio": "1e40"}, "absurd"),
    ({"ratio": "1e400"}, "Enter a number"),
    ({"text": "    \n  "}, "The text is empty"),
    ({"text": ""}, "Paste a text or pick a document"),
    ({"text": "a\x00b binary"}, "Null characters are not allowed"),
    ({"method": "magic"}, "Select a valid choice"),
])
def test_bad_requests_are_refused_with_a_clear_error(client_for, team, member, data, error):
    data = {"text": TEXT, **data}
    response = _post(client_for(member), team, **data)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not Job.objects.exists()


def test_text_and_document_together_are_refused(client_for, team, member):
    doc = _document(team)
    response = _post(client_for(member), team, text=TEXT, document=doc.pk)
    assert response.status_code == 400 and "not both" in response.content.decode()
    assert not Job.objects.exists()


def test_another_teams_document_cannot_be_compressed(client_for, team, member, outsider):
    foreign = _document(outsider.memberships.first().team, title="Foreign secret")
    response = _post(client_for(member), team, document=foreign.pk)
    assert response.status_code == 400
    assert "this team&#x27;s ready documents" in response.content.decode()
    assert "Foreign secret" not in response.content.decode()
    assert not Job.objects.exists()


def test_a_viewer_cannot_submit(client_for, team, viewer):
    response = _post(client_for(viewer), team, text=TEXT)
    assert response.status_code == 403 and not Job.objects.exists()
    assert client_for(viewer).get(_url(team)).status_code == 200  # but may look


def test_a_compression_runs_and_its_result_is_shown_inert(client_for, team, member):
    client = client_for(member)
    doc = _document(team)
    response = _post(client, team, document=doc.pk, ratio="2",
                     question="When was the lighthouse first lit?")
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == _url(team, "result", pk=job.pk)
    assert job.kind == "compress" and job.queue == "batch" and job.params["document_id"] == doc.pk
    page = client.get(_url(team, "result", pk=job.pk)).content.decode()
    assert 'hx-trigger="every 2s"' in page  # polls while queued

    assert jobs.run(job.pk, job.celery_task_id) == "succeeded", Job.objects.get().error
    job.refresh_from_db()
    result = job.result
    assert abs(result["achieved_ratio"] - 2) <= 0.2 and result["on_target"]
    assert job.tokens_in > 0 and job.tokens_out > 0  # usage recorded against the team

    partial = client.get(_url(team, "progress", pk=job.pk))
    assert partial.status_code == 286  # finished: htmx stops polling
    page = client.get(_url(team, "result", pk=job.pk)).content.decode()
    assert f"{result['achieved_ratio']:.2f}×" in page
    assert 'data-testid="keywords-kept"' in page and "%" in page
    assert 'data-copy="#compressed-text"' in page and "js/copy.js" in page
    # Document text and model output are shown as text, never as markup.
    assert "<script>alert" not in page and "<b>Visitors" not in page
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in page

    download = client.get(_url(team, "download", pk=job.pk))
    assert download.status_code == 200
    assert download["Content-Type"].startswith("text/plain")
    assert f'filename="compressed-{job.pk}.txt"' in download["Content-Disposition"]
    assert download.content.decode() == result["text"]


def test_a_text_under_the_budget_comes_back_unchanged_and_says_so(client_for, team, member):
    client = client_for(member)
    _post(client, team, text="The meeting is at 10:00 in room 4.", target="tokens",
          target_tokens="100")
    job = Job.objects.get()
    assert job.params["target_tokens"] == 100 and job.params["ratio"] is None
    assert jobs.run(job.pk, job.celery_task_id) == "succeeded"
    page = client.get(_url(team, "result", pk=job.pk)).content.decode()
    assert "returned unchanged" in page and "The meeting is at 10:00 in room 4." in page


def test_download_before_the_end_says_it_is_not_ready(client_for, team, member):
    client = client_for(member)
    _post(client, team, text=TEXT)
    job = Job.objects.get()
    response = client.get(_url(team, "download", pk=job.pk))
    assert response.status_code == 409


def test_a_deleted_document_fails_the_job_with_a_reason(client_for, team, member):
    client = client_for(member)
    doc = _document(team)
    _post(client, team, document=doc.pk)
    doc.delete()
    job = Job.objects.get()
    assert jobs.run(job.pk, job.celery_task_id) == "failed"
    page = client.get(_url(team, "result", pk=job.pk)).content.decode()
    assert "deleted before it could be compressed" in page


def test_other_teams_results_are_not_found(client_for, team, member, outsider):
    client = client_for(member)
    _post(client, team, text=TEXT)
    job = Job.objects.get()
    other = client_for(outsider)
    for name in ("result", "progress", "download"):
        assert other.get(_url(team, name, pk=job.pk)).status_code == 404
        own = outsider.memberships.first().team
        assert other.get(_url(own, name, pk=job.pk)).status_code == 404
