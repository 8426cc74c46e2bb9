"""Small-to-big retrieval: match the question at the sentence level, read the passage.

A paraphrased fact is one sentence in a ~250-token passage: the passage's averaged vector
loses it (measured: ~90th of ~1,000 passages at 128k) where the sentence's own vector ranks
it near the top. So four rankings of the passages are fused by reciprocal rank
(``fuse_small_to_big``): lexical (BM25 / full text) and dense over passages, and the
passages in the order of their best sentence by the embedder, and by the sentences that
hold an answer of the question's kind (``answer_types``).

``InMemoryRetriever`` does this in memory for tests, the benchmarks and callers without a
database; the app passes its pgvector + full-text search (``apps.documents.search``), which
fuses the same rankings with ``fuse_small_to_big``. Both have the shape
``retrieve(question, k) -> list[Passage]``.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from workers.documents.chunking import chunk_text, sentence_windows, whitespace_token_counter
from workers.documents.embeddings import get_embedder
from workers.documents.lexical import BM25Index, rrf

from .answer_types import typed_order
from .types import Passage, SourceDocument

DEFAULT_PASSAGE_WORDS = 120
FUSION_LEAD = 2  # each arm's two best passages are always among the results (see rrf)
SENTENCE_DEPTH = 300  # sentences taken from the fine-grained index per question
EVIDENCE_PER_PASSAGE = 3  # matched sentences a passage carries


@dataclass(frozen=True)
class SentenceHit:
    """A sentence window found by the fine-grained index, and its passage's key."""

    passage: Hashable
    start: int
    end: int
    text: str


def _first_seen(items: Iterable[Hashable]) -> list[Hashable]:
    return list(dict.fromkeys(items))


def fuse_small_to_big(
    question: str,
    passage_rankings: Sequence[Sequence[Hashable]],
    sentence_hits: Sequence[SentenceHit],
    *,
    typed: bool = True,
) -> tuple[list[tuple[Hashable, float]], dict[Hashable, list[SentenceHit]]]:
    """Passage keys by RRF of ``passage_rankings`` (e.g. lexical, dense), the passages of
    ``sentence_hits`` (best sentence first) and, unless ``typed`` is off, of the hits that
    hold an answer of the question's kind; every arm's ``FUSION_LEAD`` best lead. Also each
    passage's matched sentences, typed ones first, then by rank."""
    arms = [list(r) for r in passage_rankings]
    arms.append(_first_seen(h.passage for h in sentence_hits))
    order = typed_order(question, [h.text for h in sentence_hits]) if typed else None
    if order:
        arms.append(_first_seen(sentence_hits[i].passage for i in order))
    fused = rrf([a for a in arms if a], lead=FUSION_LEAD)
    leading = order or []
    evidence: dict[Hashable, list[SentenceHit]] = {}
    for i in [*leading, *range(len(sentence_hits))]:
        hit = sentence_hits[i]
        found = evidence.setdefault(hit.passage, [])
        if hit not in found and len(found) < EVIDENCE_PER_PASSAGE:
            found.append(hit)
    return fused, evidence


def matched_sentences(passages: Sequence[Passage]) -> list[tuple[object, int, int]]:
    """The passages' matched sentences as (document id, start, end), best first: every
    passage's first sentence in the passages' order, then every passage's second, ... (a
    passage ranked first for its words must not fill every slot with its sentences: the
    second passage's first sentence may be the paraphrased fact)."""
    out: list[tuple[object, int, int]] = []
    depth = max((len(p.sentences) for p in passages), default=0)
    for level in range(depth):
        for p in passages:
            if level < len(p.sentences):
                start, end = p.sentences[level]
                if (p.document_id, start, end) not in out:
                    out.append((p.document_id, start, end))
    return out


class InMemoryRetriever:
    """Passages of ~``passage_words`` words cut on sentence boundaries, exact spans; with
    ``dense``, the embedder's vectors of the passages and of their sentence windows (both
    from one pass, ``Embedder.embed_with_spans``) and small-to-big fusion. ``sentences`` and
    ``typed`` switch the sentence arm and the answer-type arm (read at each call: the
    benchmark compares the arms over one index)."""

    def __init__(
        self,
        documents: Sequence[SourceDocument],
        passage_words: int = DEFAULT_PASSAGE_WORDS,
        dense: bool = False,
        sentences: bool = True,
        typed: bool = True,
    ) -> None:
        self.sentences, self.typed = sentences, typed
        self.passages: list[Passage] = []
        for doc in documents:
            for chunk in chunk_text(doc.text, whitespace_token_counter, passage_words):
                self.passages.append(Passage(doc.id, chunk.start, chunk.end, chunk.text, 0.0))
        self._bm25 = BM25Index([p.text for p in self.passages]) if self.passages else None
        self._vectors: np.ndarray | None = None
        self._windows: list[SentenceHit] = []
        self._window_vectors = np.zeros((0, 1), dtype=np.float32)
        if dense and self.passages:
            self._embedder = get_embedder()  # the configured one: the app's index's
            texts = [p.text for p in self.passages]
            spans = [sentence_windows(t) for t in texts]
            self._vectors, per_passage = self._embedder.embed_with_spans(texts, spans)
            for i, (p, w) in enumerate(zip(self.passages, spans, strict=True)):
                self._windows += [SentenceHit(i, p.start + s, p.start + e, p.text[s:e])
                                  for s, e in w]
            self._window_vectors = np.concatenate(per_passage)

    def _sentence_hits(self, query: np.ndarray) -> list[SentenceHit]:
        if not self.sentences or not len(self._windows):
            return []
        sims = self._window_vectors @ query
        depth = min(SENTENCE_DEPTH, len(sims))
        best = np.argpartition(-sims, depth - 1)[:depth]
        return [self._windows[int(j)] for j in best[np.argsort(-sims[best], kind="stable")]]

    def __call__(self, question: str, k: int) -> list[Passage]:
        if self._bm25 is None or k < 1:
            return []
        rankings = [[i for i, _ in self._bm25.search(question, k=len(self.passages))]]
        hits: list[SentenceHit] = []
        if self._vectors is not None:
            query = self._embedder.embed([question])[0]
            sims = self._vectors @ query
            rankings.append(sorted(range(len(self.passages)), key=lambda i: -float(sims[i])))
            hits = self._sentence_hits(query)
        fused, evidence = fuse_small_to_big(question, rankings, hits, typed=self.typed)
        out = []
        for i, score in fused[:k]:
            p = self.passages[int(i)]  # type: ignore[call-overload]
            spans = tuple((h.start, h.end) for h in evidence.get(i, ()))
            out.append(Passage(p.document_id, p.start, p.end, p.text, float(score), spans))
        return out
