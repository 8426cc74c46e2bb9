"""Extraction: one small module per format behind one interface, chosen by sniffing.

``extract_document(data)`` is the entry point; ``register`` adds a format.
"""

from __future__ import annotations

from collections.abc import Callable

from ..document import ExtractedDocument
from ..errors import NoTextFound, TooManyPages, UnsupportedDocument
from ..limits import DEFAULT_LIMITS, Limits
from ..sniff import sniff

Extractor = Callable[[bytes, Limits], ExtractedDocument]
_REGISTRY: dict[str, Extractor] = {}


def register(kind: str) -> Callable[[Extractor], Extractor]:
    def decorator(func: Extractor) -> Extractor:
        _REGISTRY[kind] = func
        return func

    return decorator


def extractor_for(kind: str) -> Extractor:
    try:
        return _REGISTRY[kind]
    except KeyError:
        raise UnsupportedDocument(f"unsupported file type: {kind}") from None


def supported_kinds() -> list[str]:
    return sorted(_REGISTRY)


def extract_document(data: bytes, limits: Limits = DEFAULT_LIMITS) -> ExtractedDocument:
    """Sniff ``data`` and extract it; raises a ``DocumentError`` subclass on bad input."""
    kind = sniff(data, limits)
    doc = extractor_for(kind)(data, limits)
    if len(doc.page_map) > limits.max_pages:
        raise TooManyPages(
            f"the document has {len(doc.page_map)} pages; the limit is {limits.max_pages}"
        )
    if not doc.text.strip():
        raise NoTextFound("the document contains no text")
    return doc


# Importing the format modules registers them.
from . import docx, epub, html, markdown, pdf, text  # noqa: E402, F401

__all__ = ["Extractor", "extract_document", "extractor_for", "register", "supported_kinds"]
