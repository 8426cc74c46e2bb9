"""Documents through the pages and services: upload, deduplication, bad input, ingest,
search, viewer, delete. Ingestion runs in-process here; test_documents_worker.py runs it in
a real worker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.documents.models import Chunk, DocStatus, Document, Sentence
from apps.documents.search import passage_retriever, search, sentences
from apps.jobs import services as jobs
from apps.teams.models import Role
from tests.factories import MembershipFactory
from workers.documents.synth import make_text_pdf

pytestmark = pytest.mark.django_db

REPORT = (
    "Quarterly report.\n\nThe warehouse in Rotterdam shipped 4,210 pallets in March. "
    "Revenue grew by eleven percent.\n\nThe board approved a new office in Lisbon, opening "
    "in October. Staff numbers will reach ninety by the end of the year."
)


def _upload(client, team, name: str, data: bytes, json_accept: bool = True):
    url = reverse("documents:upload", kwargs={"team_slug": team.slug})
    headers = {"Accept": "application/json"} if json_accept else {}
    return client.post(url, {"files": [SimpleUploadedFile(name, data)]}, headers=headers)


def _ingest(document: Document) -> Document:
    job = document.job
    assert jobs.run(job.pk, job.celery_task_id) in ("succeeded", "failed")
    document.refresh_from_db()
    return document


def _media_files(settings) -> list[Path]:
    return [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]


@pytest.fixture
def writer(client, team, member):
    """A member's client. Messages are sent on commit, which never comes in these tests:
    ingestion is run by calling the job service."""
    client.force_login(member)
    return client


def test_upload_stores_under_team_folder_and_queues_ingest(writer, team, settings):
    response = _upload(writer, team, "report.txt", REPORT.encode())
    assert response.status_code == 200
    result = response.json()["results"][0]
    assert result["ok"] and not result["duplicate"]
    document = Document.objects.get(pk=result["id"])
    assert document.team == team and document.kind == "text"
    assert document.file.name.startswith(f"teams/{team.pk}/documents/")
    assert document.status == DocStatus.QUEUED and document.job.kind == "ingest_document"
    assert document.job.queue == "ingest"


def test_ingest_extracts_chunks_embeds_and_counts(writer, team):
    doc = Document.objects.get(pk=_upload(writer, team, "r.md", REPORT.encode()).json()
                               ["results"][0]["id"])
    doc = _ingest(doc)
    assert doc.status == DocStatus.READY, doc.error
    assert abs(doc.words - len(REPORT.split())) <= 2 and doc.pages >= 1
    assert doc.tokens > doc.words // 2  # counted with the LLM tokenizer
    chunks = list(doc.chunks.all())
    assert chunks and all(doc.text[c.start:c.end] == c.text for c in chunks)
    assert all(len(c.embedding) == 384 for c in chunks)
    assert doc.job.status == "succeeded" and doc.job.result["chunks"] == len(chunks)


def test_same_content_twice_is_the_same_document(writer, team, settings):
    first = _upload(writer, team, "a.txt", REPORT.encode()).json()["results"][0]
    second = _upload(writer, team, "copy-of-a.txt", REPORT.encode()).json()["results"][0]
    assert second["duplicate"] and second["id"] == first["id"]
    assert Document.objects.count() == 1 and len(_media_files(settings)) == 1


def test_same_content_in_another_team_is_separate(client, team, member, outsider):
    client.force_login(member)
    _upload(client, team, "a.txt", REPORT.encode())
    other_team = outsider.teams.get()
    client.force_login(outsider)
    result = _upload(client, other_team, "a.txt", REPORT.encode()).json()["results"][0]
    assert not result["duplicate"] and Document.objects.count() == 2


@pytest.mark.parametrize("name, data, status, message", [
    ("empty.txt", b"", 400, "empty"),
    ("image.gif", b"GIF89a" + bytes(range(256)) * 4, 400, "gif"),  # PNG, JPEG, TIFF: OCR
    ("binary.txt", b"\x00\x01\x02garbage\x00" * 50, 400, ""),
])
def test_refused_uploads_store_nothing(writer, team, settings, name, data, status, message):
    response = _upload(writer, team, name, data)
    assert response.status_code == status
    result = response.json()["results"][0]
    assert not result["ok"] and result["error"]
    assert message in result["error"].lower()
    assert not Document.objects.exists() and _media_files(settings) == []


def test_over_the_size_limit_is_refused_before_storing(writer, team, settings):
    settings.DOCUMENT_MAX_BYTES = 2_000
    response = _upload(writer, team, "big.txt", b"word " * 2_000)
    assert response.status_code == 413
    assert "limit" in response.json()["results"][0]["error"]
    assert not Document.objects.exists() and _media_files(settings) == []


def test_type_comes_from_content_not_extension(writer, team):
    pdf = make_text_pdf(["Page one text about apples.", "Page two text about pears."])
    result = _upload(writer, team, "notes.txt", pdf).json()["results"][0]
    doc = _ingest(Document.objects.get(pk=result["id"]))
    assert doc.kind == "pdf" and doc.pages == 2 and doc.status == DocStatus.READY
    # The page map is exact: page 2's text is the second page's text.
    start, end = doc.page_bounds(2)
    assert "pears" in doc.text[start:end] and "apples" not in doc.text[start:end]


@pytest.mark.parametrize("name", [
    "../../../etc/passwd.txt", "bad\x00name.txt", "x" * 400 + ".txt", "Договор №5 — 契約.txt",
])
def test_hostile_and_foreign_file_names(writer, team, settings, name):
    result = _upload(writer, team, name, f"Some text for {len(name)}.".encode()).json()
    doc = Document.objects.get(pk=result["results"][0]["id"])
    stored = Path(settings.MEDIA_ROOT) / doc.file.name
    assert stored.resolve().is_relative_to(Path(settings.MEDIA_ROOT).resolve() / "teams")
    assert "/" not in doc.original_name and "\x00" not in doc.original_name
    assert ".." not in doc.original_name.split(".")[0:1] or doc.original_name != name
    assert len(doc.original_name.encode()) <= 255
    if name.startswith("Договор"):
        assert doc.original_name == name  # non-Latin names are kept as they are


def test_html_scripts_are_stripped_and_viewer_escapes(writer, team):
    html = (b"<html><head><title>Notice</title><script>alert('x')</script></head><body>"
            b"<h1>Notice</h1><p>The &lt;b&gt;meeting&lt;/b&gt; moved to Friday at noon in the "
            b"north wing of the building.</p><script>document.write('evil')</script></body></html>")
    doc = _ingest(Document.objects.get(
        pk=_upload(writer, team, "n.html", html).json()["results"][0]["id"]))
    assert doc.status == DocStatus.READY, doc.error
    assert "alert" not in doc.text and "document.write" not in doc.text
    assert "The <b>meeting</b> moved" in doc.text  # the page's text, its tags as plain text
    page = writer.get(reverse("documents:detail", kwargs={"team_slug": team.slug, "pk": doc.pk}))
    body = page.content.decode()
    assert "&lt;b&gt;meeting" in body and "<b>meeting" not in body


def test_viewer_highlights_a_span_on_its_page(writer, team):
    pdf = make_text_pdf(["Alpha page.", "Beta page with the clause on liability.", "Gamma."])
    doc = _ingest(Document.objects.get(pk=_upload(writer, team, "c.pdf", pdf).json()
                                       ["results"][0]["id"]))
    start = doc.text.index("liability")
    url = reverse("documents:detail", kwargs={"team_slug": team.slug, "pk": doc.pk})
    body = writer.get(url, {"start": start, "end": start + 9}).content.decode()
    assert '<mark id="highlight">liability</mark>' in body
    assert 'value="2"' in body  # opened at page 2
    assert writer.get(url, {"page": 99}).status_code == 404
    assert writer.get(url, {"start": 10**9, "end": 10**9 + 5}).status_code == 200  # ignored


def test_hybrid_search_finds_passages_and_stays_in_team(client, team, member, outsider):
    client.force_login(member)
    mine = _ingest(Document.objects.get(pk=_upload(client, team, "r.txt", REPORT.encode())
                                        .json()["results"][0]["id"]))
    client.force_login(outsider)
    other_team = outsider.teams.get()
    secret = "The secret Lisbon office code is 7781. " * 3
    _ingest(Document.objects.get(pk=_upload(client, other_team, "s.txt", secret.encode())
                                 .json()["results"][0]["id"]))
    for mode in ("hybrid", "dense", "lexical"):
        hits = search(team, "Lisbon office opening", mode=mode)
        assert hits and all(h.chunk.document_id == mine.pk for h in hits), mode
        assert "Lisbon" in hits[0].chunk.text
    # Paraphrase, no shared keyword: dense finds it, lexical does not.
    assert search(team, "how many pallets left the Dutch depot", mode="dense")
    assert search(team, "zebra xylophone", mode="lexical") == []
    # What the QA engine gets: exact spans of this team's chosen documents.
    passages = passage_retriever(team, [mine.pk])("Lisbon office opening", 3)
    assert passages and all(p.document_id == mine.pk for p in passages)
    assert all(mine.text[p.start:p.end] == p.text for p in passages)
    assert mine.page_of(passages[0].start) == 1
    client.force_login(member)
    page = client.get(reverse("documents:search", kwargs={"team_slug": team.slug}),
                      {"q": "Lisbon"}).content.decode()
    assert "<mark>Lisbon</mark>" in page and "7781" not in page


def _essay(fact: str, paragraphs: int = 24) -> str:
    """Generated prose of several chunks with ``fact`` in the middle."""
    import random

    from workers.documents.synth import filler_text

    text = filler_text(paragraphs * 700, random.Random(11))
    at = text.find(". ", len(text) // 2) + 2
    return f"{text[:at]}{fact} {text[at:]}"


FACT = "The audit of the depot was signed off by Margaret Oyelaran on a rainy afternoon."
PARAPHRASE = "Who approved the inspection of the warehouse?"  # no content word shared


def test_sentence_index_finds_a_paraphrased_fact_small_to_big(writer, team):
    doc = _ingest(Document.objects.get(pk=_upload(writer, team, "essay.txt",
                                                  _essay(FACT).encode())
                                       .json()["results"][0]["id"]))
    assert doc.chunk_count >= 8
    rows = list(Sentence.objects.filter(document=doc).select_related("chunk"))
    assert len(rows) > doc.chunk_count * 3
    for row in rows:  # exact spans, inside their chunk
        assert row.chunk.start <= row.start < row.end <= row.chunk.end
        assert doc.text[row.start:row.end].strip() == doc.text[row.start:row.end]
    fact_at = doc.text.index(FACT)
    passages = passage_retriever(team, [doc.pk])(PARAPHRASE, 3)
    holding = [p for p in passages if p.start <= fact_at < p.end]
    assert holding, [p.text[:60] for p in passages]
    assert any(s <= fact_at < e for s, e in holding[0].sentences)  # matched small, read big
    assert doc.text[holding[0].start:holding[0].end] == holding[0].text
    # Re-ingest replaces the sentence rows with the chunks; delete removes them.
    from apps.documents import services

    before = Sentence.objects.filter(document=doc).count()
    services.reingest(doc, None)
    doc.refresh_from_db()
    _ingest(doc)
    assert Sentence.objects.filter(document=doc).count() == before


def test_sentence_search_stays_in_team(client, team, member, outsider):
    client.force_login(member)
    mine = _ingest(Document.objects.get(pk=_upload(client, team, "mine.txt",
                                                   _essay("Lunch is at noon.", 6).encode())
                                        .json()["results"][0]["id"]))
    client.force_login(outsider)
    other_team = outsider.teams.get()
    theirs = _ingest(Document.objects.get(pk=_upload(client, other_team, "theirs.txt",
                                                     _essay(FACT, 6).encode())
                                          .json()["results"][0]["id"]))
    assert Sentence.objects.filter(document=theirs).exists()
    # The other team's fact is the best match there is, and never comes back to this team,
    # not even when its document id is asked for.
    assert sentences(other_team, PARAPHRASE)[0].document_id == theirs.pk
    for ids in (None, [mine.pk], [theirs.pk], [mine.pk, theirs.pk]):
        found = sentences(team, PARAPHRASE, ids)
        assert all(s.team_id == team.pk and s.document_id == mine.pk for s in found), ids
        hits = search(team, PARAPHRASE, document_ids=ids)
        assert all(h.chunk.document_id == mine.pk for h in hits), ids
    assert sentences(team, PARAPHRASE, [theirs.pk]) == []


def test_delete_removes_file_chunks_and_vectors(writer, team, settings,
                                                django_capture_on_commit_callbacks):
    doc = _ingest(Document.objects.get(pk=_upload(writer, team, "r.txt", REPORT.encode())
                                       .json()["results"][0]["id"]))
    assert Chunk.objects.filter(document=doc).exists() and _media_files(settings)
    with django_capture_on_commit_callbacks(execute=True):  # the file goes after commit
        response = writer.post(reverse("documents:delete",
                                       kwargs={"team_slug": team.slug, "pk": doc.pk}))
    assert response.status_code == 302
    assert not Document.objects.exists() and not Chunk.objects.exists()
    assert not Sentence.objects.exists()
    assert _media_files(settings) == []


def test_viewer_cannot_upload_or_delete(client, team):
    viewer = MembershipFactory(team=team, role=Role.VIEWER).user
    client.force_login(viewer)
    assert _upload(client, team, "a.txt", b"hello world").status_code == 403
    assert client.get(reverse("documents:library", kwargs={"team_slug": team.slug})) \
        .status_code == 200


def test_status_endpoint_reports_progress_as_json(writer, team):
    result = _upload(writer, team, "a.txt", REPORT.encode()).json()["results"][0]
    status = json.loads(writer.get(result["status_url"], headers={"Accept": "application/json"})
                        .content)
    assert status["state"] == "queued" and status["percent"] == 0


def test_long_chunks_use_the_longembed_strategy(writer, team, settings):
    """Chunks of 1,024 tokens (4× MiniLM's window) are embedded with parallel context
    windows: the vector of a chunk reflects text past the first 256 tokens."""
    from workers.documents.embeddings import get_embedder
    from workers.documents.longembed import embed_long

    settings.EMBEDDING_CHUNK_TOKENS = 1024
    settings.EMBEDDING_STRATEGY = "pcw"
    text = " ".join(f"Sentence {i} talks about gardening and soil." for i in range(150))
    text += " The secret vault code is 4417 and only the auditor knows it."
    doc = _ingest(Document.objects.get(pk=_upload(writer, team, "long.txt", text.encode())
                                       .json()["results"][0]["id"]))
    chunk = doc.chunks.order_by("index").first()
    assert chunk.tokens > 300  # longer than the model's own window
    expected = embed_long(get_embedder(), [chunk.text], "pcw")[0]
    assert abs(float((chunk.embedding * expected).sum()) - 1.0) < 1e-3
    # Its sentences past the model's window are in the sentence index too.
    vault = doc.text.index("The secret vault code")
    assert Sentence.objects.filter(document=doc, start__lte=vault, end__gt=vault).exists()
