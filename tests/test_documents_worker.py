"""Hostile documents through a real worker: each fails with a clear error on its row, the
worker lives on and the next document is ingested."""

from __future__ import annotations

import io

import pypdf
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from apps.documents import services
from apps.documents.models import DocStatus
from tests.documents_engine.builders import make_zip_bomb, png_declaring
from tests.live_worker import LiveWorker, settled_document, wait_for
from workers.documents.scans import scanned_pdf
from workers.documents.synth import make_text_pdf

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _encrypted_pdf() -> bytes:
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(make_text_pdf(["secret"]))))
    writer.encrypt("hunter2", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


HOSTILE = {
    "corrupt.pdf": (b"%PDF-1.7\n" + b"\x13garbage" * 500, "damaged"),
    "locked.pdf": (_encrypted_pdf(), "encrypted PDF: remove the password and upload again"),
    "scan.pdf": (make_text_pdf(["", ""], image_only=True),
                 "no text could be read"),
    "bomb.docx": (make_zip_bomb("docx", inflated_mb=400), ""),
    "bomb.png": (png_declaring(100_000, 100_000), "the limit is 60 megapixels"),
    "broken.tiff": (b"II*\x00" + b"\x13garbage" * 200, "the image is damaged"),
    "scans.pdf": (scanned_pdf([Image.new("L", (40, 56), 255)] * 2_000, dpi=5),
                  "the PDF has 2,000 pages to read by OCR; the limit is 1,000 pages"),
}


@pytest.fixture
def worker():
    from workers.celery import app

    with app.connection_for_write() as conn:
        conn.default_channel.client.flushdb()
    w = LiveWorker(queues="ingest").start()
    yield w
    w.stop()


def test_hostile_documents_fail_clearly_and_the_worker_lives_on(team, owner, worker):
    ids = {}
    for name, (data, _) in HOSTILE.items():
        try:
            ids[name] = services.upload(team, owner, SimpleUploadedFile(name, data)).document.pk
        except services.UploadRefused as refused:  # refused at the door is fine too
            assert refused.message
    good = services.upload(team, owner, SimpleUploadedFile(
        "fine.txt", b"A perfectly ordinary memo about the spring budget.")).document
    for name, pk in ids.items():
        doc = wait_for(lambda pk=pk: settled_document(pk), timeout=120, message=name)
        expected = HOSTILE[name][1]
        assert doc.status == DocStatus.FAILED, name
        assert doc.error and expected in doc.error, (name, doc.error)
        assert doc.job.status == "failed"
    doc = wait_for(lambda: settled_document(good.pk), timeout=180, message="the good document")
    assert doc.status == DocStatus.READY, (doc.error, worker.log)
    assert doc.chunk_count >= 1 and worker.alive
