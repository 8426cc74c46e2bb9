"""PDF via pypdfium2 (Apache/BSD; fast C text extraction, unlike PyMuPDF's AGPL).

Pages with a text layer keep it; pages without one (scans) are rendered and read by OCR
(``ocr.py``), so a mixed PDF OCRs only the pages that need it. A scan stamped with a few
characters of text (a Bates number, a header) is OCR'd too, and keeps its stamp.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
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
# A page whose text layer has fewer characters than this (spaces aside) while images cover
# at least SCAN_SHARE of it is a scan with a stamp (a Bates number, a header, a date): it is
# OCR'd and keeps the stamp. A text page has far more characters, so a logo costs it nothing.
STAMP_CHARS = 100
SCAN_SHARE = 0.5
# Objects looked at to measure a page's images; a page with more is a drawing, not a scan.
_MAX_OBJECTS = 1_000


@dataclass
class _Layer:
    text: str
    ocr: bool = False  # no text layer, or a stamp on a scan
    above: bool = False  # the stamp starts in the upper half of the page


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
                layers = [_layer(pdf, index) for index in range(count)]
                title = (pdf.get_metadata_dict().get("Title") or "").strip()
                toc = _outline(pdf)
            except pdfium.PdfiumError as exc:
                raise CorruptDocument("the PDF is damaged and cannot be read") from exc
        scanned = [n for n, layer in enumerate(layers, start=1) if layer.ocr]
        ocr.check_ocr_pages(len(scanned), limits, "the PDF")
        read = ocr.read_pages(scanned, lambda n: _render(pdf, n - 1, limits), limits, progress)
    finally:
        with _PDFIUM_LOCK:
            pdf.close()
    pages = [layer.text for layer in layers]
    for number, text in read.texts.items():
        pages[number - 1] = _with_stamp(text, layers[number - 1])
    # A stamped page OCR found no text on (a photo) is a page with a short text layer.
    read.unreadable = [n for n in read.unreadable
                       if n in read.slow or not layers[n - 1].text.strip()]
    if count and not any(p.strip() for p in pages):
        if timeout := read.nothing_read(limits):
            raise timeout
        raise NoTextFound(
            f"no text could be read: the PDF has no text layer, and OCR found no text on its "
            f"{len(scanned):,} pages"
        )
    doc = from_pages("pdf", pages, title=title)
    doc.ocr_pages, doc.unreadable_pages = sorted(read.texts), read.unreadable
    doc.slow_pages = read.slow
    # Bookmarks point at pages, not characters: anchor each heading at its page start.
    starts = {n: s for s, n in doc.page_map}
    doc.headings = [Heading(lv, t, starts[p]) for lv, t, p in toc if p in starts]
    doc.title = pick_title(title, doc.headings)
    return doc


def _layer(pdf: pdfium.PdfDocument, index: int) -> _Layer:
    """Page ``index``'s text layer, and whether OCR reads the page: it has no text layer, or
    a stamp's few characters on a page mostly covered by images (a scan)."""
    page = pdf[index]
    try:
        textpage = page.get_textpage()
        try:
            text = textpage.get_text_range()
            chars = len("".join(text.split()))
            if chars == 0 or chars >= STAMP_CHARS:
                return _Layer(text, ocr=chars == 0)
            try:
                share = _image_share(page)
            except pdfium.PdfiumError:  # objects PDFium cannot place: keep the layer as it is
                share = 0.0
            if share < SCAN_SHARE:
                return _Layer(text)
            return _Layer(text, ocr=True, above=_starts_above(page, textpage, text))
        finally:
            textpage.close()
    finally:
        page.close()


def _starts_above(page: pdfium.PdfPage, textpage: pdfium.PdfTextPage, text: str) -> bool:
    first = next(i for i, ch in enumerate(text) if not ch.isspace())
    try:
        _, bottom, _, top = textpage.get_charbox(first)
    except pdfium.PdfiumError:  # where the stamp goes is not worth failing the page for
        return False
    _, page_bottom, _, page_top = page.get_bbox()
    return (bottom + top) / 2 > (page_bottom + page_top) / 2


def _image_share(page: pdfium.PdfPage) -> float:
    """The share of the page that images cover (their areas added, so at most 1). A form
    XObject holding an image counts with its whole bounds: stamping tools wrap the scanned
    page in one and draw the stamp beside it."""
    left, bottom, right, top = page.get_bbox()
    covered = 0.0
    for n, obj in enumerate(page.get_objects(max_depth=1)):
        if n >= _MAX_OBJECTS:
            return 0.0
        if obj.type == pdfium_c.FPDF_PAGEOBJ_FORM and not _holds_image(page, obj):
            continue
        if obj.type in (pdfium_c.FPDF_PAGEOBJ_IMAGE, pdfium_c.FPDF_PAGEOBJ_FORM):
            x0, y0, x1, y1 = obj.get_bounds()
            covered += (max(0.0, min(x1, right) - max(x0, left))
                        * max(0.0, min(y1, top) - max(y0, bottom)))
    return min(1.0, covered / max((right - left) * (top - bottom), 1.0))


def _holds_image(page: pdfium.PdfPage, form: pdfium.PdfObject) -> bool:
    objects = itertools.islice(page.get_objects(max_depth=4, form=form, level=1), _MAX_OBJECTS)
    return any(obj.type == pdfium_c.FPDF_PAGEOBJ_IMAGE for obj in objects)


def _with_stamp(text: str, layer: _Layer) -> str:
    """OCR's text of a page with its text layer's lines (a stamp): a line OCR read as it is
    stays; one OCR read without its spaces ("BATES000123") takes the layer's spelling in its
    place, so the number stays a word to search; one OCR missed goes before the text or after
    it, where the stamp sits."""
    lines = text.split("\n")
    squashed = [_squashed(line) for line in lines]
    extra = []
    for stamp in (" ".join(line.split()) for line in layer.text.splitlines()):
        if not stamp or stamp.casefold() in " ".join(text.split()).casefold():
            continue
        if _squashed(stamp) in squashed:
            lines[squashed.index(_squashed(stamp))] = stamp
        else:
            extra.append(stamp)
    text = "\n".join(lines)
    if not extra:
        return text
    parts = ["\n".join(extra), text]
    return "\n\n".join(parts if layer.above else parts[::-1])


def _squashed(text: str) -> str:
    return "".join(text.split()).casefold()


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
