"""Deterministic fitting of a text into a token budget, keeping whole sentences.

What a small model cannot be trusted to do (stop at a length) is done here: choose the
sentences that carry the chunk's keywords (then the most relevant, then the earliest),
keep them in their original order, and fill what room is left with the start of the
best remaining sentence cut at a clause or word boundary.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from workers.documents.chunking import sentence_spans

from .keywords import kept

TokenCounter = Callable[[str], int]
_CLAUSE_MARKS = (";", ":", ",", " — ", " – ", " - ")


def truncate(text: str, budget: int, count: TokenCounter, *, clause: bool = True) -> str:
    """The longest prefix of ``text`` within ``budget`` tokens, cut after a clause mark when
    one is near the end (``clause``), else at a word boundary, else (one huge word) at a
    character."""
    if budget <= 0:
        return ""
    if count(text) <= budget:
        return text
    words = text.split(" ")
    lo, hi = 0, len(words)  # the longest word prefix that fits
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count(" ".join(words[:mid])) <= budget:
            lo = mid
        else:
            hi = mid - 1
    if lo == 0:  # a single word longer than the budget
        chars, top = 0, len(words[0])
        while chars < top:
            mid = (chars + top + 1) // 2
            if count(words[0][:mid]) <= budget:
                chars = mid
            else:
                top = mid - 1
        return words[0][:chars]
    prefix = " ".join(words[:lo])
    cut = max(prefix.rfind(mark) for mark in _CLAUSE_MARKS) if clause else -1
    if cut > len(prefix) * 0.8:  # a clause boundary that loses little
        prefix = prefix[:cut]
    return prefix.rstrip(" ,;:-—–")


def _clauses(sentence: str) -> list[str]:
    parts = re.split(r"(?<=[,;:])\s++|(?<!\s)\s++(?=[—–-]\s)", sentence)  # each run read once
    return [p for p in parts if p.strip()]


def _cover(
    units: Sequence[str],
    costs: Sequence[int],
    keywords: Sequence[str],
    room: int,
    covered: set[str],
    order: Sequence[int],
) -> tuple[list[int], int]:
    """Greedy set cover: units bringing the most not-yet-kept keywords per token, then the
    rest in ``order`` while they fit. Returns the chosen indices and the room left."""
    has = [set(kept(u, keywords)) for u in units]
    chosen: list[int] = []
    while True:
        gains = [
            (len(has[i] - covered) / costs[i], -i)
            for i in range(len(units))
            if i not in chosen and has[i] - covered and costs[i] <= room
        ]
        if not gains:
            break
        i = -max(gains)[1]
        chosen.append(i)
        covered |= has[i]
        room -= costs[i]
    for i in order:
        if i not in chosen and costs[i] <= room:
            chosen.append(i)
            covered |= has[i]
            room -= costs[i]
    return chosen, room


def fit(
    text: str,
    budget: int,
    count: TokenCounter,
    keywords: Sequence[str] = (),
    scores: Sequence[float] | None = None,
    min_fill: int = 8,
) -> str:
    """``text`` within ``budget`` tokens. ``scores``: a relevance per sentence of ``text``
    (as split by the shared splitter), when the caller has them.

    Whole sentences first (keyword cover, then relevance, then position); the room left
    goes to clauses of the other sentences that carry missing keywords, then to the start
    of the best sentence left over."""
    if budget <= 0:
        return ""
    if count(text) <= budget:
        return text
    units = [text[a:b] for a, b in sentence_spans(text)]
    if not units:
        return truncate(text.strip(), budget, count)
    costs = [count(u) + 1 for u in units]  # + the joining space
    rel = list(scores) if scores is not None and len(scores) == len(units) else [0.0] * len(units)
    order = sorted(range(len(units)), key=lambda i: (-rel[i], i))
    covered: set[str] = set()
    chosen, room = _cover(units, costs, keywords, budget, covered, order)
    pieces: dict[int, str] = {i: units[i] for i in chosen}
    rest = [i for i in order if i not in pieces]
    missing = [k for k in keywords if k not in covered]
    if rest and room >= 4 and missing:  # clauses that carry what is still missing
        for i in rest:
            clauses = _clauses(units[i])
            ccosts = [count(c) + 1 for c in clauses]
            picked, room = _cover(clauses, ccosts, missing, room, covered, [])
            if picked:
                pieces[i] = " ".join(clauses[j] for j in sorted(picked))
                missing = [k for k in keywords if k not in covered]
            if room < 4 or not missing:
                break
    rest = [i for i in rest if i not in pieces]
    if rest and room >= min_fill:  # fill the room with the start of the best sentence left over
        best = min(rest, key=lambda i: (-len(set(kept(units[i], missing))), order.index(i)))
        piece = truncate(units[best], room - 2, count)
        if piece and not piece.startswith("…"):
            pieces[best] = piece + "…"  # marks the cut for the reader
    if not pieces:  # not even a clause fits: the start of the best sentence, however short
        best = max(range(len(units)), key=lambda i: (len(kept(units[i], keywords)),
                                                     -order.index(i)))
        return truncate(units[best], budget, count)
    out = " ".join(pieces[i] for i in sorted(pieces))
    # Token counts are not additive across joins: trim the last bit if it overflows.
    while out and count(out) > budget:
        out = truncate(out, budget, count)
    return out
