"""Hybrid search over a team's chunks: pgvector (HNSW, cosine) for dense, Postgres full
text (tsvector + GIN) for lexical, fused by reciprocal rank. The team and the document set
are filters inside each query, never applied to results afterwards."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings
from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db import connection, transaction
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from pgvector.django import CosineDistance

from apps.documents.models import Chunk, DocStatus
from workers.documents.lexical import rrf

MODES = ("hybrid", "dense", "lexical")
_WORD = re.compile(r"\w{3,}", re.UNICODE)


@dataclass
class Hit:
    chunk: Chunk
    score: float
    dense_rank: int | None = None
    lexical_rank: int | None = None

    @property
    def snippet(self) -> SafeString:
        return highlight_terms(self.chunk.text, self.query_terms)

    query_terms: tuple[str, ...] = ()


def _scope(team, document_ids):
    chunks = Chunk.objects.filter(team=team, document__status=DocStatus.READY)
    if document_ids is not None:
        chunks = chunks.filter(document_id__in=list(document_ids))
    return chunks.select_related("document")


def dense(team, query: str, document_ids=None, limit: int = 20) -> list[Chunk]:
    from workers.documents.embeddings import get_embedder

    vector = get_embedder(settings.EMBEDDING_MODEL or None).embed([query])[0]
    with transaction.atomic():
        with connection.cursor() as cursor:
            # Filters apply after the HNSW scan: look at more candidates than we return.
            cursor.execute("SET LOCAL hnsw.ef_search = %s", [max(100, limit * 4)])
        return list(_scope(team, document_ids)
                    .annotate(distance=CosineDistance("embedding", vector))
                    .order_by("distance")[:limit])


def lexical(team, query: str, document_ids=None, limit: int = 20) -> list[Chunk]:
    ts_query = SearchQuery(query, search_type="websearch", config="english")
    return list(_scope(team, document_ids).filter(search=ts_query)
                .annotate(rank=SearchRank("search", ts_query)).order_by("-rank", "id")[:limit])


def search(team, query: str, *, document_ids=None, mode: str = "hybrid",
           limit: int = 10) -> list[Hit]:
    query = query.strip()
    if not query:
        return []
    if mode not in MODES:
        raise ValueError(f"unknown search mode {mode!r}; use one of {', '.join(MODES)}")
    depth = max(limit * 3, 20)
    dense_hits = dense(team, query, document_ids, depth) if mode != "lexical" else []
    lexical_hits = lexical(team, query, document_ids, depth) if mode != "dense" else []
    by_id = {c.pk: c for c in [*dense_hits, *lexical_hits]}
    dense_rank = {c.pk: i for i, c in enumerate(dense_hits, start=1)}
    lexical_rank = {c.pk: i for i, c in enumerate(lexical_hits, start=1)}
    # Each arm's two best hits always make the list (a paraphrase has no lexical match).
    fused = rrf([[c.pk for c in dense_hits], [c.pk for c in lexical_hits]], lead=2)
    terms = tuple(sorted({w.lower() for w in _WORD.findall(query)}, key=len, reverse=True))
    return [Hit(by_id[pk], score, dense_rank.get(pk), lexical_rank.get(pk), terms)
            for pk, score in fused[:limit]]


def highlight_terms(text: str, terms: tuple[str, ...], max_chars: int = 600) -> SafeString:
    """Escaped text with the query's words in <mark>; around the first match if long."""
    pattern = re.compile("|".join(re.escape(t) for t in terms), re.IGNORECASE) if terms else None
    if len(text) > max_chars:
        first = pattern.search(text) if pattern else None
        begin = max(0, (first.start() if first else 0) - max_chars // 3)
        text = ("…" if begin else "") + text[begin:begin + max_chars] + "…"
    if not pattern:
        return escape(text)
    out, last = [], 0
    for match in pattern.finditer(text):
        out.append(escape(text[last:match.start()]))
        out.append(f"<mark>{escape(match.group())}</mark>")
        last = match.end()
    out.append(escape(text[last:]))
    return mark_safe("".join(out))  # noqa: S308 - every piece of document text is escaped


def highlight_span(text: str, start: int, end: int) -> SafeString:
    """Escaped text with [start, end) marked (offsets relative to `text`)."""
    start, end = max(0, min(start, len(text))), max(0, min(end, len(text)))
    if end <= start:
        return escape(text)
    return mark_safe(  # noqa: S308 - all three parts are escaped
        f'{escape(text[:start])}<mark id="highlight">{escape(text[start:end])}</mark>'
        f"{escape(text[end:])}"
    )


def passage_retriever(team, document_ids):
    """The QA engine's ``retrieve(query, k)`` over the team's chunks of these documents
    (hybrid search), as exact-span passages."""
    from workers.qa.types import Passage

    ids = list(document_ids)

    def retrieve(query: str, k: int) -> list[Passage]:
        hits = search(team, query, document_ids=ids, limit=k)
        return [Passage(h.chunk.document_id, h.chunk.start, h.chunk.end, h.chunk.text, h.score)
                for h in hits]

    return retrieve
