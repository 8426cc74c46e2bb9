"""Sentences and semantic chunks: cut where neighbouring sentences stop being similar.

Sentences come from the shared sentence splitter (exact character spans); a sentence
longer than ``max_sentence_tokens`` (a line with no full stop) is cut at whitespace.
The cut threshold adapts to the text: mean − ``k`` · std of the neighbour similarities,
so a text whose sentences are all alike is not shredded and a patchwork is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from workers.documents.chunking import chunk_text, sentence_spans

TokenCounter = Callable[[str], int]


@dataclass(frozen=True)
class Sentence:
    start: int
    end: int
    text: str
    tokens: int


@dataclass
class Segment:
    """A run of consecutive sentences ``[first, last)``."""

    first: int
    last: int

    def sentences(self, sentences: Sequence[Sentence]) -> Sequence[Sentence]:
        return sentences[self.first : self.last]

    def tokens(self, sentences: Sequence[Sentence]) -> int:
        return sum(s.tokens for s in sentences[self.first : self.last])


def split_sentences(text: str, count: TokenCounter, max_sentence_tokens: int) -> list[Sentence]:
    out: list[Sentence] = []
    for start, end in sentence_spans(text):
        piece = text[start:end]
        tokens = count(piece)
        if tokens <= max_sentence_tokens:
            out.append(Sentence(start, end, piece, tokens))
            continue
        for c in chunk_text(piece, count, max_sentence_tokens):
            out.append(Sentence(start + c.start, start + c.end, c.text, c.tokens))
    return out


def neighbour_similarities(vectors: np.ndarray) -> np.ndarray:
    """Cosine similarity of each sentence with the next (vectors are L2-normalised)."""
    if len(vectors) < 2:
        return np.zeros(0, dtype=np.float32)
    return np.einsum("ij,ij->i", vectors[:-1], vectors[1:])


def semantic_segments(similarities: np.ndarray, k: float = 0.5) -> list[Segment]:
    """Cut after sentence i where similarity(i, i+1) < mean − k·std."""
    n = len(similarities) + 1
    if n < 3:
        return [Segment(0, n)]
    threshold = float(similarities.mean() - k * similarities.std())
    cuts = [i + 1 for i, s in enumerate(similarities) if s < threshold]
    bounds = [0, *cuts, n]
    return [Segment(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
