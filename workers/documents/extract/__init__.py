"""Extraction: one small module per format behind one interface, chosen by sniffing.

``extract_document(data)`` is the entry point; ``register`` adds a format. Formats that read
page by page with OCR (PDF, images) report progress per page.
"""

from __future__ import annotations

from collections.abc import Callable

from workers.progress import Progress, no_progress

from ..document import ExtractedDocument
from ..errors import NoTextFound, TooManyPages, UnsupportedDocument
from ..limits import DEFAULT_LIMITS, Limits
from ..sniff import sniff

Extractor = Callable[[bytes, Limits], ExtractedDocument]
# Every registered reader takes (data, limits, progress); most have no steps to report.
_REGISTRY: dict[str, Callable[[bytes, Limits, Progress], ExtractedDocument]] = {}


def register(*kinds: str, reports_progress: bool = False) -> Callable[[Extractor], Extractor]:
    def decorator(func: Extractor) -> Extractor:
        def reader(
            data: bytes, limits: Limits, progress: Progress = no_progress
        ) -> ExtractedDocument:
            return func(data, limits, progress) if reports_progress else func(data, limits)

        for kind in kinds:
            _REGISTRY[kind] = reader
        return func

    return decorator


def extractor_for(kind: str) -> Callable[[bytes, Limits, Progress], ExtractedDocument]:
    try:
        return _REGISTRY[kind]
    except KeyError:
        raise UnsupportedDocument(f"unsupported file type: {kind}") from None


def supported_kinds() -> list[str]:
    return sorted(_REGISTRY)


def extract_document(
    data: bytes, limits: Limits = DEFAULT_LIMITS, progress: Progress = no_progress
) -> ExtractedDocument:
    """Sniff ``data`` and extract it; raises a ``DocumentError`` subclass on bad input.
    ``progress(done, total, message)``: one step per page read by OCR."""
    kind = sniff(data, limits)
    doc = extractor_for(kind)(data, limits, progress)
    if len(doc.page_map) > limits.max_pages:
        raise TooManyPages(
            f"the document has {len(doc.page_map)} pages; the limit is {limits.max_pages}"
        )
    if not doc.text.strip():
        raise NoTextFound("the document contains no text")
    return doc


# Importing the format modules registers them.
from . import docx, epub, html, image, markdown, pdf, text  # noqa: E402, F401

__all__ = ["Extractor", "extract_document", "extractor_for", "register", "supported_kinds"]
