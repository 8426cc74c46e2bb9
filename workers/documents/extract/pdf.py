"""PDF via pypdfium2 (Apache/BSD; fast C text extraction, unlike PyMuPDF's AGPL)."""

from __future__ import annotations

import threading

import pypdfium2 as pdfium

from ..document import ExtractedDocument, Heading, from_pages
from ..errors import CorruptDocument, EncryptedPDF, NoTextLayer, TooManyPages
from ..limits import Limits
from ..titles import pick_title
from . import register

# PDFium is not thread-safe; a worker running threads must not enter it twice at once.
_PDFIUM_LOCK = threading.Lock()
_ERR_PASSWORD = 4


@register("pdf")
def extract_pdf(data: bytes, limits: Limits) -> ExtractedDocument:
    with _PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            if getattr(exc, "err_code", None) == _ERR_PASSWORD:
                raise EncryptedPDF("encrypted PDF: remove the password and upload again") from exc
            raise CorruptDocument("the PDF is damaged and cannot be read") from exc
        try:
            count = len(pdf)
            if count > limits.max_pages:
                raise TooManyPages(f"the PDF has {count} pages; the limit is {limits.max_pages}")
            pages: list[str] = []
            for index in range(count):
                page = pdf[index]
                textpage = page.get_textpage()
                pages.append(textpage.get_text_range())
                textpage.close()
                page.close()
            title = (pdf.get_metadata_dict().get("Title") or "").strip()
            toc = _outline(pdf)
        except pdfium.PdfiumError as exc:
            raise CorruptDocument("the PDF is damaged and cannot be read") from exc
        finally:
            pdf.close()
    if count and not any(p.strip() for p in pages):
        raise NoTextLayer("no text layer; OCR is not supported yet")
    doc = from_pages("pdf", pages, title=title)
    # Bookmarks point at pages, not characters: anchor each heading at its page start.
    starts = {n: s for s, n in doc.page_map}
    doc.headings = [Heading(lv, t, starts[p]) for lv, t, p in toc if p in starts]
    doc.title = pick_title(title, doc.headings)
    return doc


def _outline(pdf: pdfium.PdfDocument) -> list[tuple[int, str, int]]:
    try:
        return [
            (item.level + 1, item.get_title(), item.get_dest().get_index() + 1)
            for item in pdf.get_toc(max_depth=6)
            if item.get_dest() is not None
        ]
    except Exception:  # a broken outline must not cost us the text
        return []
