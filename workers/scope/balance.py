"""The measurement loop: count the assembled text and adjust chunks until the achieved
ratio sits within the band around the target.

Too long: shrink the least relevant chunk that still has text (re-fit it to fewer tokens;
drop it when nothing useful would be left). Too short: restore the most relevant chunk
that lost the most (re-fit its original to more tokens, or bring a dropped one back).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .fitting import fit
from .types import ChunkTrace

SEPARATOR = "\n\n"
RESTORE_MIN_TOKENS = 8  # less of a dropped chunk than this would say nothing


@dataclass
class Piece:
    trace: ChunkTrace
    original: str
    scores: Sequence[float]  # relevance of the original's sentences
    keywords_for: Callable[[int], list[str]] | None = None  # what a budget can carry


def assemble(pieces: Sequence[Piece]) -> str:
    return SEPARATOR.join(p.trace.text for p in pieces if p.trace.text)


def balance(
    pieces: Sequence[Piece],
    target: int,
    count: Callable[[str], int],
    *,
    band: float = 0.05,
    min_chunk_tokens: int = 12,
) -> str:
    """Adjust ``pieces`` in place; returns the assembled text."""
    lo, hi = target / (1 + band), target / (1 - band)
    exhausted: set[int] = set()
    for _ in range(4 * len(pieces) + 20):
        text = assemble(pieces)
        total = count(text)
        if lo <= total <= hi:
            return text
        if total > hi:
            live = [p for p in pieces if p.trace.text]
            if not live:
                return text
            p = min(live, key=lambda p: p.trace.relevance)
            now = count(p.trace.text)
            budget = now - (total - target)
            # Cut down to a stub, a chunk says nothing useful: drop it instead.
            if budget < max(min_chunk_tokens, now // 4) and len(live) > 1:
                p.trace.text, p.trace.outcome = "", "dropped"
                p.trace.reason = "least relevant: dropped to meet the ratio"
            else:
                p.trace.text = fit(p.trace.text, max(1, budget), count, p.trace.keywords)
                p.trace.reason = (p.trace.reason + "; " if p.trace.reason else "") + (
                    "trimmed further to meet the ratio"
                )
        else:
            short = [
                p for p in pieces
                if p.trace.index not in exhausted and count(p.trace.text) < p.trace.original_tokens
            ]
            if not short:
                return text
            p = max(short, key=lambda p: p.trace.relevance)
            now = count(p.trace.text) if p.trace.text else 0
            # Room up to the top of the band: whole sentences rarely fill an exact deficit.
            budget = min(p.trace.original_tokens, now + int(hi - total))
            if not p.trace.text and budget < RESTORE_MIN_TOKENS:
                exhausted.add(p.trace.index)  # a stub of a dropped chunk would say nothing
                continue
            was_dropped = not p.trace.text
            if was_dropped and p.keywords_for is not None:
                # Its keywords were chosen for the whole chunk; a stub carries fewer.
                p.trace.keywords = p.keywords_for(budget)
            # Small deficits need small fills: a few words of the next best sentence.
            restored = fit(p.original, budget, count, p.trace.keywords, p.scores, min_fill=3)
            if count(restored) <= now:  # no progress possible on this chunk
                exhausted.add(p.trace.index)
                continue
            p.trace.text = restored
            p.trace.outcome = "restored"
            p.trace.reason = (
                "brought back (as original sentences) to meet the ratio"
                if was_dropped
                else "came out short of its share: original sentences restored to meet the ratio"
            )
    return assemble(pieces)
