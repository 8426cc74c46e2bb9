"""Ingest as one call: bytes → extracted document → chunks with pages → vectors.

``ingest_bytes`` is the one ingest path: the app's ingest job (``apps/documents/services.py``
loads the upload, passes a progress callback that writes the job row, and stores the rows),
the benchmarks and the tests all call it.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from workers.config import current

from .chunking import TokenCounter, chunk_text, sentence_windows
from .document import ExtractedDocument
from .embeddings import Embedder, get_embedder
from .errors import DocumentError
from .extract import extract_document
from .language import detect_language
from .limits import DEFAULT_LIMITS, Limits
from .sandbox import extract_sandboxed

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
    # The fine-grained index: per chunk, its sentence windows (document offsets) and vectors.
    windows: list[list[tuple[int, int]]] | None = None
    window_vectors: list[np.ndarray] | None = None
    language: str = ""  # ISO 639-1 code of the text's language ("" if undetermined)


@dataclass
class EmbeddedChunks:
    vectors: np.ndarray  # one per chunk
    windows: list[list[tuple[int, int]]]  # per chunk: sentence windows, document offsets
    window_vectors: list[np.ndarray]  # per chunk: (len(windows), dim)


def embed_chunks(
    embedder: Embedder,
    chunks: list[DocumentChunk],
    long_strategy: str | None = None,
    batch_size: int = 64,
    progress: Progress | None = None,
    language: str = "",
) -> EmbeddedChunks:
    """Vectors at two granularities: each chunk (the passage) and each sentence window in
    it. Both come from one forward pass per chunk (``Embedder.embed_with_spans``), so the
    sentence index costs no second read of the text. A chunk longer than the model's
    window (``long_strategy``: LongEmbed) is embedded with that strategy and its windows
    on their own."""

    windows = [sentence_windows(c.text, language=language) for c in chunks]
    vectors: list[np.ndarray] = []
    window_vectors: list[np.ndarray] = []
    for start in range(0, len(chunks), batch_size):
        batch = chunks[start : start + batch_size]
        spans = windows[start : start + batch_size]
        if long_strategy:
            from .longembed import embed_long  # imports torch (~4 s): only when it is used

            vectors.extend(embed_long(embedder, [c.text for c in batch], long_strategy))
            window_vectors.extend(
                embedder.embed([c.text[s:e] for s, e in w]) if w else np.zeros((0, embedder.dim))
                for c, w in zip(batch, spans, strict=True)
            )
        else:
            text_vectors, span_vectors = embedder.embed_with_spans([c.text for c in batch], spans)
            vectors.extend(text_vectors)
            for c, w, v in zip(batch, spans, span_vectors, strict=True):
                past = [j for j in range(len(w)) if not v[j].any()]  # beyond the window
                if past:
                    v[past] = embedder.embed([c.text[w[j][0] : w[j][1]] for j in past])
                window_vectors.append(v)
        if progress:
            progress(min(start + batch_size, len(chunks)), len(chunks), "embedding")
    dim = embedder.dim
    return EmbeddedChunks(
        vectors=np.asarray(vectors, dtype=np.float32).reshape(len(chunks), dim),
        windows=[[(c.start + s, c.start + e) for s, e in w] for c, w in zip(chunks, windows,
                                                                           strict=True)],
        window_vectors=[np.asarray(v, dtype=np.float32).reshape(-1, dim)
                        for v in window_vectors],
    )


def chunk_document(
    document: ExtractedDocument,
    count_tokens: TokenCounter,
    max_tokens: int,
    overlap_tokens: int = 0,
    language: str = "",
) -> list[DocumentChunk]:
    """Chunks of the document's text, each with the pages it spans and its section heading;
    sentences are cut by the rules of ``language`` (ISO 639-1, "" if unknown)."""
    heading_starts = [h.start for h in document.headings]
    out = []
    for c in chunk_text(document.text, count_tokens, max_tokens, overlap_tokens, language):
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
    sandboxed: bool = True,
    max_tokens: int | None = None,
    long_strategy: str | None = None,
    overlap_tokens: int = 0,
    batch_size: int = 32,
    progress: Progress | None = None,
) -> IngestResult:
    """Extract, chunk and embed at both granularities (``embed_chunks``).

    The embedder, the chunk size and the LongEmbed strategy default to the engine
    configuration (``workers.config``: the app fills it from its settings), so the app, the
    benchmarks and the tests build the same index. Chunks fill the embedder's window unless
    ``max_tokens`` (or the configured chunk size) says otherwise; chunks longer than the
    window are embedded with the LongEmbed ``long_strategy`` (``longembed.py``).
    ``progress(done, 100, message)``: 10 once extracted, 20 → 100 while embedding; when pages
    are read by OCR (page by page), 0 → 60 while they are read, then 70 → 100 embedding.
    Extraction runs in a child process under ``limits`` unless the caller trusts the bytes
    (``sandboxed=False``); it raises ``DocumentError`` for a file it cannot read."""
    configured = current().embedder  # what the caller gives overrides the engine config
    embedder = embedder or get_embedder()
    report = progress or (lambda done, total, message: None)
    read_share = [10]  # of the bar: extraction, most of the work when OCR reads pages

    def reading(done: int, total: int, message: str) -> None:
        read_share[0] = 60
        report(60 * done // max(total, 1), 100, message)

    try:
        document = (extract_sandboxed if sandboxed else extract_document)(data, limits,
                                                                          reading)
    except DocumentError:
        raise
    except Exception as err:  # a bug or a library crash on a hostile file: the file is unread
        raise DocumentError(f"The file could not be read ({type(err).__name__}).") from err
    stats = document.stats
    read = read_share[0]
    report(read, 100, f"Extracted {stats.pages} pages, {stats.words:,} words")
    prefix, suffix = embedder.special_tokens
    window = embedder.max_seq_length - len(prefix) - len(suffix)
    size = max_tokens or configured.chunk_tokens or window
    language = detect_language(document.text)
    chunks = chunk_document(document, embedder.count_tokens, size, overlap_tokens, language)
    report(read + 10, 100, f"Embedding {len(chunks):,} chunks")

    def embedded(done: int, total: int, _message: str) -> None:
        report(read + 10 + int((90 - read) * done / max(total, 1)), 100,
               f"Embedded {done:,} of {total:,} chunks")

    long = (long_strategy or configured.strategy) if size > window else None
    vectors = embed_chunks(embedder, chunks, long, batch_size=batch_size * 8, progress=embedded,
                           language=language)
    return IngestResult(document=document, chunks=chunks, vectors=vectors.vectors,
                        windows=vectors.windows, window_vectors=vectors.window_vectors,
                        language=language)
