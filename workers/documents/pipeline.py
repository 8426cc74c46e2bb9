"""Ingest as one call: bytes → extracted document → chunks with pages → vectors.

The Celery task is an adapter around ``ingest_bytes``: it loads the upload, passes a progress
callback that writes the job row, and stores chunks and vectors.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .chunking import TokenCounter, chunk_text
from .document import ExtractedDocument
from .embeddings import Embedder, get_embedder
from .extract import extract_document
from .limits import DEFAULT_LIMITS, Limits

Progress = Callable[[int, int, str], None]  # (done, total, message)


@dataclass(frozen=True)
class DocumentChunk:
    index: int
    start: int
    end: int
    text: str
    tokens: int
    pages: list[int]
    heading: str  # the section the chunk starts in, "" before the first heading


@dataclass
class IngestResult:
    document: ExtractedDocument
    chunks: list[DocumentChunk]
    vectors: np.ndarray  # (len(chunks), dim), L2-normalised


def chunk_document(
    document: ExtractedDocument,
    count_tokens: TokenCounter,
    max_tokens: int,
    overlap_tokens: int = 0,
) -> list[DocumentChunk]:
    """Chunks of the document's text, each with the pages it spans and its section heading."""
    heading_starts = [h.start for h in document.headings]
    out = []
    for c in chunk_text(document.text, count_tokens, max_tokens, overlap_tokens):
        h = bisect_right(heading_starts, c.start) - 1
        if h < 0 and heading_starts and heading_starts[0] < c.end:
            h = 0  # the chunk opens its first section ("# Intro" starts after "# ")
        out.append(
            DocumentChunk(
                index=c.index,
                start=c.start,
                end=c.end,
                text=c.text,
                tokens=c.tokens,
                pages=document.pages_for_span(c.start, c.end),
                heading=document.headings[h].text if h >= 0 else "",
            )
        )
    return out


def ingest_bytes(
    data: bytes,
    embedder: Embedder | None = None,
    limits: Limits = DEFAULT_LIMITS,
    max_tokens: int | None = None,
    overlap_tokens: int = 0,
    batch_size: int = 32,
    progress: Progress | None = None,
) -> IngestResult:
    """Extract, chunk (to the embedder's window unless ``max_tokens``) and embed."""
    embedder = embedder or get_embedder()
    document = extract_document(data, limits)
    prefix, suffix = embedder.special_tokens
    size = max_tokens or embedder.max_seq_length - len(prefix) - len(suffix)
    chunks = chunk_document(document, embedder.count_tokens, size, overlap_tokens)
    total = len(chunks)
    if progress:
        progress(0, total, "embedding")
    parts = []
    for start in range(0, total, batch_size * 8):
        batch = [c.text for c in chunks[start : start + batch_size * 8]]
        parts.append(embedder.embed(batch, batch_size=batch_size))
        if progress:
            progress(min(start + len(batch), total), total, "embedding")
    vectors = np.concatenate(parts) if parts else np.zeros((0, embedder.dim), dtype=np.float32)
    return IngestResult(document=document, chunks=chunks, vectors=vectors)
