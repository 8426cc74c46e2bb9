"""The hostile corpus through the app: a web upload of the comment run answers promptly, and
a real prefork Celery worker (the ingest service's pool) reads uploads in the sandbox, fails
the slow one with the limit's message and goes on to ingest the next document."""

from __future__ import annotations

import subprocess
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.documents import services
from apps.documents.models import DocStatus, Document
from tests import live_worker
from tests.documents_engine.builders import billion_laughs, epub_with
from tests.live_worker import LiveWorker, settled_document, wait_for


def _upload(client, team, name: str, data: bytes):
    url = reverse("documents:upload", kwargs={"team_slug": team.slug})
    return client.post(url, {"files": [SimpleUploadedFile(name, data)]},
                       headers={"Accept": "application/json"})


@pytest.mark.django_db
@pytest.mark.parametrize("comments", [40, 100_000])
def test_web_upload_of_the_comment_run_returns_promptly(client_for, team, owner, comments):
    # 40 comments held the old sniffing regex (and the whole web process) for ~16 hours.
    start = time.perf_counter()
    response = _upload(client_for(owner), team, "page.html", b"<!---->" * comments + b"x")
    assert time.perf_counter() - start < 30
    assert response.status_code in (200, 201), response.content
    document = Document.objects.get(team=team)
    assert document.kind == "text" and document.status == DocStatus.QUEUED


@pytest.mark.django_db
def test_web_upload_neutralises_a_right_to_left_override_name(client_for, team, owner):
    response = _upload(client_for(owner), team, "invoice\u202egpj.exe", b"Just a memo.")
    assert response.status_code in (200, 201), response.content
    name = Document.objects.get(team=team).original_name
    assert "\u202e" not in name and name.endswith("gpj.exe")  # shown as it really ends


@pytest.fixture
def prefork_worker(monkeypatch):
    """A live worker with the prefork pool (LiveWorker starts a threads pool) and a 1 s
    parse limit. Prefork children are daemonic: multiprocessing children would be refused
    there, which is why the sandbox is a plain subprocess; this proves it works."""
    from workers.celery import app

    with app.connection_for_write() as conn:
        conn.default_channel.client.flushdb()
    real_popen = subprocess.Popen

    def popen(args, **kwargs):
        return real_popen(["prefork" if a == "threads" else a for a in args], **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(live_worker.subprocess, "Popen", popen)
        worker = LiveWorker(queues="ingest", env={"DOCUMENT_PARSE_SECONDS": "1"}).start()
    yield worker
    worker.stop()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_prefork_worker_reads_in_the_sandbox_and_lives_on(team, owner, prefork_worker):
    assert "(prefork)" in prefork_worker.log
    slow = b"<html><body>" + b"<p>word and more words</p>" * 100_000 + b"</body></html>"
    laughs = billion_laughs(
        '<container xmlns="urn:oasis:names:tc:opendocument:xmlns:container">BODY</container>')
    hostile = {
        "slow.html": (slow, "took longer than 1 s to read"),
        "laughs.epub": (epub_with(container=laughs), "damaged"),
    }
    ids = {name: services.upload(team, owner, SimpleUploadedFile(name, data)).document.pk
           for name, (data, _) in hostile.items()}
    good = services.upload(team, owner, SimpleUploadedFile(
        "fine.md", b"# Budget\n\nA perfectly ordinary memo about the spring budget.")).document
    for name, pk in ids.items():
        doc = wait_for(lambda pk=pk: settled_document(pk), timeout=120, message=name)
        assert doc.status == DocStatus.FAILED, (name, prefork_worker.log)
        assert hostile[name][1] in doc.error, (name, doc.error)
    doc = wait_for(lambda: settled_document(good.pk), timeout=180, message="the good document")
    assert doc.status == DocStatus.READY, (doc.error, prefork_worker.log)
    assert doc.headings[0]["text"] == "Budget" and prefork_worker.alive
