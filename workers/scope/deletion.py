"""The deletion baseline (LLMLingua-style): score every word by its self-information
under the small model (−log p of its tokens given the text before), drop the least
informative words until the text meets the target. Same harness, same token counts.

LLMLingua itself downloads its models from a hub; this is the same idea on whatever
backend is configured (needs ``continuation_logprobs``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from workers.documents.chunking import segments
from workers.llm.base import ContinuationLogprobs, LLMBackend, Usage
from workers.progress import Progress

from .types import ChunkTrace

PREFIX = "Text:\n"
SEGMENT_TOKENS = 1024  # per scoring call: the model sees this much context before each word


@lru_cache(maxsize=64)
def _score(backend: LLMBackend, segment: str) -> ContinuationLogprobs:
    """Self-information of a segment's tokens. Cached: the same text compressed to several
    ratios (the benchmark, a user trying ratios) is scored once. Separate calls, not one
    batch, so the model never holds more than one segment."""
    return backend.continuation_logprobs(PREFIX, segment)


def _words(tokens: list[str], logprobs: list[float]) -> list[tuple[str, float]]:
    """Group tokens into words (a token opening with whitespace starts a new word);
    a word's score is the mean self-information of its tokens."""
    words: list[tuple[str, list[float]]] = []
    for tok, lp in zip(tokens, logprobs, strict=True):
        if not words or tok[:1].isspace():
            words.append((tok, [-lp]))
        else:
            words[-1] = (words[-1][0] + tok, [*words[-1][1], -lp])
    return [(w, sum(info) / len(info)) for w, info in words]


def deletion_compress(
    text: str,
    target: int,
    backend: LLMBackend,
    *,
    progress: Progress,
    band: float = 0.05,
) -> tuple[str, list[ChunkTrace], Usage]:
    count: Callable[[str], int] = backend.count_tokens
    segs = list(segments(text, SEGMENT_TOKENS, count))
    usage = Usage()
    words: list[tuple[str, float, int]] = []  # (word, self-information, segment)
    traces = []
    for n, seg in enumerate(segs):
        progress(n, len(segs) + 1, f"Scoring segment {n + 1} of {len(segs)}")
        scored = _score(backend, seg.text)
        usage = usage + scored.usage
        if words:  # a paragraph break between segments, always kept
            words.append(("\n\n", float("inf"), n))
        words.extend((w, s, n) for w, s in _words(scored.tokens, scored.logprobs))
        traces.append(ChunkTrace(n, seg.start, seg.end, seg.tokens, outcome="deleted",
                                 reason="least informative words deleted"))
    progress(len(segs), len(segs) + 1, "Deleting the least informative words")
    ranked = sorted(range(len(words)), key=lambda i: -words[i][1])
    lo, hi = target / (1 + band), target / (1 - band)
    keep_n = min(len(words), max(1, int(len(words) * target / max(1, count(text)))))
    out = ""
    for _ in range(12):  # the kept count converges in a few steps (tokens ≈ words · c)
        keep = sorted(ranked[:keep_n])
        out = "".join(words[i][0] for i in keep).strip()
        total = count(out)
        if lo <= total <= hi:
            break
        new = max(1, min(len(words), round(keep_n * target / max(1, total))))
        if new == keep_n:
            new = keep_n + (1 if total < lo else -1)
        if new < 1 or new > len(words):
            break
        keep_n = new
    for t in traces:
        kept_words = "".join(words[i][0] for i in sorted(ranked[:keep_n]) if words[i][2] == t.index)
        t.text = kept_words.strip()
        t.achieved_tokens = count(t.text) if t.text else 0
        t.target_tokens = round(t.original_tokens * target / max(1, count(text)))
    return out, traces, usage
