"""PDF via pypdfium2 (Apache/BSD; fast C text extraction, unlike PyMuPDF's AGPL).

Pages with a text layer keep it; pages without one (scans) are rendered and read by OCR
(``ocr.py``), so a mixed PDF OCRs only the pages that need it.
"""

from __future__ import annotations

import threading

import pypdfium2 as pdfium
from PIL import Image

from workers.progress import Progress, no_progress

from ..document import ExtractedDocument, Heading, from_pages
from ..errors import CorruptDocument, EncryptedPDF, NoTextFound, TooManyPages
from ..limits import Limits
from ..titles import pick_title
from . import ocr, register

# PDFium is not thread-safe; a worker running threads must not enter it twice at once.
_PDFIUM_LOCK = threading.Lock()
_ERR_PASSWORD = 4


@register("pdf", reports_progress=True)
def extract_pdf(data: bytes, limits: Limits, progress: Progress = no_progress) -> ExtractedDocument:
    with _PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            if getattr(exc, "err_code", None) == _ERR_PASSWORD:
                raise EncryptedPDF("encrypted PDF: remove the password and upload again") from exc
            raise CorruptDocument("the PDF is damaged and cannot be read") from exc
    try:
        with _PDFIUM_LOCK:
            try:
                count = len(pdf)
                if count > limits.max_pages:
                    raise TooManyPages(
                        f"the PDF has {count} pages; the limit is {limits.max_pages}")
                pages = [_page_text(pdf, index) for index in range(count)]
                title = (pdf.get_metadata_dict().get("Title") or "").strip()
                toc = _outline(pdf)
            except pdfium.PdfiumError as exc:
                raise CorruptDocument("the PDF is damaged and cannot be read") from exc
        scanned = [n for n, text in enumerate(pages, start=1) if not text.strip()]
        ocr.check_ocr_pages(len(scanned), limits, "the PDF")
        read = ocr.read_pages(scanned, lambda n: _render(pdf, n - 1, limits), progress)
    finally:
        with _PDFIUM_LOCK:
            pdf.close()
    for number, text in read.texts.items():
        pages[number - 1] = text
    if count and not any(p.strip() for p in pages):
        raise NoTextFound(
            f"no text could be read: the PDF has no text layer, and OCR found no text on its "
            f"{len(scanned):,} pages"
        )
    doc = from_pages("pdf", pages, title=title)
    doc.ocr_pages, doc.unreadable_pages = sorted(read.texts), read.unreadable
    # Bookmarks point at pages, not characters: anchor each heading at its page start.
    starts = {n: s for s, n in doc.page_map}
    doc.headings = [Heading(lv, t, starts[p]) for lv, t, p in toc if p in starts]
    doc.title = pick_title(title, doc.headings)
    return doc


def _page_text(pdf: pdfium.PdfDocument, index: int) -> str:
    page = pdf[index]
    try:
        textpage = page.get_textpage()
        text = textpage.get_text_range()
        textpage.close()
        return text
    finally:
        page.close()


def _render(pdf: pdfium.PdfDocument, index: int, limits: Limits) -> Image.Image | None:
    """Page ``index`` as a greyscale image for OCR, or None when PDFium cannot draw it. The
    scale keeps the bitmap within the pixel limits whatever size the page declares."""
    with _PDFIUM_LOCK:
        page = pdf[index]
        try:
            width, height = page.get_size()  # points
            pixels = min(limits.max_image_pixels, ocr.OCR_MAX_PIXELS)
            scale = min(ocr.RENDER_DPI / 72, (pixels / max(width * height, 1.0)) ** 0.5)
            return page.render(scale=scale, grayscale=True).to_pil().copy()
        except pdfium.PdfiumError:
            return None
        finally:
            page.close()


def _outline(pdf: pdfium.PdfDocument) -> list[tuple[int, str, int]]:
    try:
        return [
            (item.level + 1, item.get_title(), item.get_dest().get_index() + 1)
            for item in pdf.get_toc(max_depth=6)
            if item.get_dest() is not None
        ]
    except Exception:  # a broken outline must not cost us the text
        return []
