"""OCR's page decisions through upload, ingest, search and the viewer: a page past its time
limit (a small DOCUMENT_OCR_PAGE_SECONDS here) is left unreadable and said so on the
document, which is ingested with its other pages; a scan stamped with a Bates number is
OCR'd, and both its body and its stamp are found by full-text search."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.documents.models import DocStatus, Document
from apps.documents.search import search
from tests.documents_engine.test_ocr import PAGES, figures_table
from tests.test_documents import _ingest, _upload
from workers.documents.scans import joined_pdf, page_image, scanned_pdf, stamped_pdf

pytestmark = pytest.mark.django_db


def test_a_slow_page_is_marked_and_a_stamped_scan_is_searchable(client, team, member,
                                                                 settings):
    settings.DOCUMENT_OCR_PAGE_SECONDS = 5  # a short page takes ~1-2 CPU s, the table ~25
    client.force_login(member)
    data = joined_pdf([
        scanned_pdf([page_image(PAGES[0], pt=14)]),
        scanned_pdf([figures_table()]),
        stamped_pdf(scanned_pdf([PAGES[2]], pt=14), "BATES 000123"),
    ])
    response = _upload(client, team, "bundle.pdf", data)
    doc = _ingest(Document.objects.get(pk=response.json()["results"][0]["id"]))
    assert doc.status == DocStatus.READY, doc.error
    assert doc.pages == 3 and doc.ocr_pages == [1, 3]
    assert doc.unreadable_pages == doc.slow_pages == [2]
    # The stamp's number and the OCR'd body of its page are both words to search.
    for word in ("000123", "barley"):
        hits = search(team, word, mode="lexical")
        assert hits and hits[0].chunk.document_id == doc.pk, (word, doc.text)
        assert 3 in hits[0].chunk.pages
    assert search(team, "Kessler", mode="lexical")[0].chunk.pages[0] == 1
    url = reverse("documents:detail", kwargs={"team_slug": team.slug, "pk": doc.pk})
    summary = client.get(url).content.decode()
    assert "OCR could not read page 2" in summary
    assert "OCR of page 2 took longer than 5 s, the time allowed for a page." in summary
    page = client.get(url, {"page": 2}).content.decode()
    assert "OCR of this page took longer than 5 s: its text is missing" in page
