"""An in-memory retriever (BM25, optionally fused with dense vectors) for tests, the
benchmark and callers without a database. The app passes its pgvector + full-text search
instead; both have the shape ``retrieve(question, k) -> list[Passage]``."""

from __future__ import annotations

from collections.abc import Sequence

from workers.documents.chunking import chunk_text, whitespace_token_counter
from workers.documents.lexical import BM25Index, rrf

from .types import Passage, SourceDocument

DEFAULT_PASSAGE_WORDS = 120
FUSION_LEAD = 2  # each arm's two best passages are always among the results (see rrf)


class InMemoryRetriever:
    """Passages of ~``passage_words`` words cut on sentence boundaries, exact spans."""

    def __init__(
        self,
        documents: Sequence[SourceDocument],
        passage_words: int = DEFAULT_PASSAGE_WORDS,
        dense: bool = False,
    ) -> None:
        self.passages: list[Passage] = []
        for doc in documents:
            for chunk in chunk_text(doc.text, whitespace_token_counter, passage_words):
                self.passages.append(Passage(doc.id, chunk.start, chunk.end, chunk.text, 0.0))
        self._bm25 = BM25Index([p.text for p in self.passages]) if self.passages else None
        self._vectors = None
        if dense and self.passages:
            from workers.documents.embeddings import get_embedder

            self._embedder = get_embedder()
            self._vectors = self._embedder.embed([p.text for p in self.passages])

    def __call__(self, question: str, k: int) -> list[Passage]:
        if self._bm25 is None or k < 1:
            return []
        rankings = [[i for i, _ in self._bm25.search(question, k=len(self.passages))]]
        if self._vectors is not None:
            sims = self._vectors @ self._embedder.embed([question])[0]
            rankings.append(sorted(range(len(self.passages)), key=lambda i: -float(sims[i])))
        fused = rrf(rankings, lead=FUSION_LEAD)[:k]
        out = []
        for i, score in fused:
            p = self.passages[int(i)]  # type: ignore[call-overload]
            out.append(Passage(p.document_id, p.start, p.end, p.text, float(score)))
        return out
