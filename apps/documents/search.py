"""Hybrid search over a team's chunks: pgvector (HNSW, cosine) for dense, Postgres full
text (tsvector + GIN) for lexical, and the sentence index (small-to-big: the chunks holding
the sentences closest to the query, and those holding an answer of the question's kind),
fused by reciprocal rank (``workers.qa.retrieval.fuse_small_to_big``). The team and the
document set are filters inside each query, never applied to results afterwards."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from pgvector.django import CosineDistance

from apps.documents import fulltext
from apps.documents.models import Chunk, DocStatus, Document, Sentence
from workers.documents.embeddings import get_embedder
from workers.documents.language import cjk_runs, cjk_terms, without_cjk
from workers.qa.retrieval import SENTENCE_DEPTH, SentenceHit, fuse_small_to_big
from workers.qa.types import Passage

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
    sentences: tuple[tuple[int, int], ...] = ()  # matched sentence windows, document offsets


def _ids(document_ids):
    # A queryset of documents (those a person may read) stays a subquery of the search.
    if isinstance(document_ids, QuerySet):
        return document_ids.values("pk")
    return list(document_ids)


def _scope(team, document_ids):
    chunks = Chunk.objects.filter(team=team, document__status=DocStatus.READY)
    if document_ids is not None:
        chunks = chunks.filter(document_id__in=_ids(document_ids))
    return chunks.select_related("document")


def _query_vector(query: str):
    return get_embedder().embed([query])[0]  # the engine configuration's: the index's


def _nearest(queryset, vector, limit: int) -> list:
    with transaction.atomic():
        with connection.cursor() as cursor:
            # Filters apply after the HNSW scan: look at more candidates than we return.
            cursor.execute("SET LOCAL hnsw.ef_search = %s", [min(1000, max(100, limit * 4))])
        return list(queryset.annotate(distance=CosineDistance("embedding", vector))
                    .order_by("distance")[:limit])


def dense(team, query: str, document_ids=None, limit: int = 20, vector=None) -> list[Chunk]:
    vector = _query_vector(query) if vector is None else vector
    return _nearest(_scope(team, document_ids), vector, limit)


def sentences(team, query: str, document_ids=None, limit: int = SENTENCE_DEPTH,
              vector=None) -> list[Sentence]:
    """The team's sentence windows closest to the query, with their chunks."""
    vector = _query_vector(query) if vector is None else vector
    rows = Sentence.objects.filter(team=team, document__status=DocStatus.READY)
    if document_ids is not None:
        rows = rows.filter(document_id__in=_ids(document_ids))
    return _nearest(rows.select_related("chunk__document"), vector, limit)


def lexical(team, query: str, document_ids=None, limit: int = 20) -> list[Chunk]:
    """Full text, each chunk in its document's language (``fulltext``)."""
    documents = Document.objects.filter(team=team, status=DocStatus.READY)
    if document_ids is not None:
        documents = documents.filter(pk__in=_ids(document_ids))
    languages = documents.order_by().values_list("language", flat=True).distinct()
    matched = fulltext.match(_scope(team, document_ids), query, fulltext.configs_for(languages))
    return list(matched.order_by("-rank", "id")[:limit])


def search(team, query: str, *, document_ids=None, mode: str = "hybrid",
           limit: int = 10) -> list[Hit]:
    query = query.strip()
    if not query:
        return []
    if mode not in MODES:
        raise ValueError(f"unknown search mode {mode!r}; use one of {', '.join(MODES)}")
    depth = max(limit * 3, 20)
    vector = _query_vector(query) if mode != "lexical" else None
    dense_hits = dense(team, query, document_ids, depth, vector) if vector is not None else []
    fine = sentences(team, query, document_ids, vector=vector) if vector is not None else []
    lexical_hits = lexical(team, query, document_ids, depth) if mode != "dense" else []
    by_id = {c.pk: c for c in [*dense_hits, *lexical_hits, *(s.chunk for s in fine)]}
    dense_rank = {c.pk: i for i, c in enumerate(dense_hits, start=1)}
    lexical_rank = {c.pk: i for i, c in enumerate(lexical_hits, start=1)}
    hits = [SentenceHit(s.chunk_id, s.start, s.end,
                        s.chunk.text[s.start - s.chunk.start:s.end - s.chunk.start])
            for s in fine]
    fused, evidence = fuse_small_to_big(
        query, [[c.pk for c in dense_hits], [c.pk for c in lexical_hits]], hits)
    terms = tuple(sorted({w.lower() for w in _WORD.findall(without_cjk(query))}
                         | {t for run in cjk_runs(query) for t in cjk_terms(run)},
                         key=len, reverse=True))  # CJK: the bigrams full text matched
    return [Hit(by_id[pk], score, dense_rank.get(pk), lexical_rank.get(pk), terms,
                tuple((h.start, h.end) for h in evidence.get(pk, ())))
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


def passage_retriever(team, document_ids: Iterable[int]) -> Callable[[str, int], list[Passage]]:
    """The QA engine's ``retrieve(query, k)`` over the team's chunks of the documents with
    these primary keys
    (hybrid search with the sentence index), as exact-span passages carrying their matched
    sentences."""
    ids = list(document_ids)

    def retrieve(query: str, k: int) -> list[Passage]:
        hits = search(team, query, document_ids=ids, limit=k)
        return [Passage(h.chunk.document_id, h.chunk.start, h.chunk.end, h.chunk.text, h.score,
                        h.sentences)
                for h in hits]

    return retrieve
