"""Document engine: sniff, extract, chunk, embed, and search helpers. Plain Python, no Django.

Entry points: ``extract_document``, ``chunk_text``/``segments``, ``get_embedder``,
``embed_long``, ``BM25Index``/``rrf``, ``ingest_bytes``; errors in ``errors``.
"""

from __future__ import annotations

from .chunking import Chunk, chunk_text, segments
from .document import ExtractedDocument, Heading, page_of, page_text, pages_for_span
from .errors import DocumentError
from .extract import extract_document, register, supported_kinds
from .filenames import safe_filename
from .limits import DEFAULT_LIMITS, Limits
from .sniff import sniff

__all__ = [
    "DEFAULT_LIMITS",
    "Chunk",
    "DocumentError",
    "ExtractedDocument",
    "Heading",
    "Limits",
    "chunk_text",
    "extract_document",
    "page_of",
    "page_text",
    "pages_for_span",
    "register",
    "safe_filename",
    "segments",
    "sniff",
    "supported_kinds",
]
