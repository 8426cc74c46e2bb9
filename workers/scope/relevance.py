"""Relevance of chunks and sentences: similarity to the question, or, without one, to the
text's centroid (how representative a chunk is of the whole)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .segmenting import Segment


def anchor_vector(vectors: np.ndarray, question_vector: np.ndarray | None) -> np.ndarray:
    if question_vector is not None:
        return question_vector
    centroid = vectors.mean(axis=0)
    return centroid / (np.linalg.norm(centroid) or 1.0)


def chunk_relevance(
    vectors: np.ndarray, segments: Sequence[Segment], anchor: np.ndarray
) -> list[float]:
    """Per chunk: the max of its sentences' similarities blended with their mean, so one
    highly relevant sentence (a needle) lifts its chunk."""
    sims = vectors @ anchor
    out = []
    for seg in segments:
        part = sims[seg.first : seg.last]
        out.append(float(0.6 * part.max() + 0.4 * part.mean()))
    return out
