"""Outlier chunks: merge tiny ones into their more similar neighbour, split huge ones at
their weakest internal link (the lowest neighbour similarity), recursively."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .segmenting import Segment, Sentence


def _chunk_vector(vectors: np.ndarray, seg: Segment) -> np.ndarray:
    v = vectors[seg.first : seg.last].mean(axis=0)
    return v / (np.linalg.norm(v) or 1.0)


def split_huge(
    segments: list[Segment], sentences: Sequence[Sentence], sims: np.ndarray, max_tokens: int
) -> list[Segment]:
    out: list[Segment] = []
    stack = list(reversed(segments))
    while stack:
        seg = stack.pop()
        if seg.tokens(sentences) <= max_tokens or seg.last - seg.first < 2:
            out.append(seg)
            continue
        # Weakest link among the inner boundaries, preferring cuts near the middle so
        # the halves stay balanced (similarity plus a small distance-from-middle penalty).
        inner = range(seg.first, seg.last - 1)  # boundary after sentence i
        middle = (seg.first + seg.last - 1) / 2
        span = max(1.0, (seg.last - seg.first) / 2)
        cut = min(inner, key=lambda i: float(sims[i]) + 0.3 * abs(i - middle) / span) + 1
        stack.append(Segment(cut, seg.last))
        stack.append(Segment(seg.first, cut))
    return out


def merge_tiny(
    segments: list[Segment],
    sentences: Sequence[Sentence],
    vectors: np.ndarray,
    min_tokens: int,
    max_tokens: int,
) -> list[Segment]:
    segs = list(segments)
    while len(segs) > 1:
        sizes = [s.tokens(sentences) for s in segs]
        small = [i for i, n in enumerate(sizes) if n < min_tokens]
        if not small:
            break
        i = min(small, key=lambda j: sizes[j])
        options = [j for j in (i - 1, i + 1) if 0 <= j < len(segs)]
        fitting = [j for j in options if sizes[i] + sizes[j] <= max_tokens] or options
        here = _chunk_vector(vectors, segs[i])
        j = max(fitting, key=lambda j: float(here @ _chunk_vector(vectors, segs[j])))
        a, b = sorted((i, j))
        segs[a : b + 1] = [Segment(segs[a].first, segs[b].last)]
    return segs


def handle_outliers(
    segments: list[Segment],
    sentences: Sequence[Sentence],
    vectors: np.ndarray,
    sims: np.ndarray,
    min_tokens: int,
    max_tokens: int,
) -> list[Segment]:
    return merge_tiny(
        split_huge(segments, sentences, sims, max_tokens), sentences, vectors, min_tokens,
        max_tokens,
    )
