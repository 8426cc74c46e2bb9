"""Repetition across sections, measured by shared word n-grams.

A section that restates an earlier one shares many of its content 4-grams (4 words in a row,
not all function words); two texts on unrelated subjects share few. ``repetition`` is the
share of a text's 4-grams found in another; ``repeated_paragraphs`` drops the paragraphs of
a new section that mostly restate what is written already.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

import numpy as np

_WORD = re.compile(r"[^\W_]{1,40}")
_FUNCTION_WORDS = """a an the and or but of to in on at for with by from as is are was were be
been being it its this that these those there their they them he she his her we our you your i
my not no so if then than also can could will would should may might must do does did have has
had which who whom what when where how why all any each every some more most very just into
over about up out one"""
FUNCTION = frozenset(_FUNCTION_WORDS.split())
N = 4
# A paragraph of a new section sharing this share of its 4-grams with what is written
# already restates it (two sections on one subject by the same model share ~0.05-0.15).
PARAGRAPH_OVERLAP = 0.45


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def grams(text: str, n: int = N) -> set[tuple[str, ...]]:
    """The content n-grams of ``text``: word n-grams that are not only function words."""
    ws = words(text)
    return {tuple(ws[i:i + n]) for i in range(len(ws) - n + 1)
            if any(w not in FUNCTION for w in ws[i:i + n])}


def repetition(text: str, other: set[tuple[str, ...]] | str, n: int = N) -> float:
    """Share of ``text``'s content n-grams found in ``other`` (a text or its n-grams)."""
    mine = grams(text, n)
    theirs = grams(other, n) if isinstance(other, str) else other
    return len(mine & theirs) / len(mine) if mine else 0.0


def cross_section_repetition(sections: Iterable[str], n: int = N) -> float:
    """Mean over sections (weighted by their n-grams) of the share of each section's
    n-grams found in the other sections of the same text; 0 for one section."""
    texts = [t for t in sections if t.strip()]
    sets = [grams(t, n) for t in texts]
    shared = total = 0
    for k, mine in enumerate(sets):
        others = set().union(*(s for j, s in enumerate(sets) if j != k))
        shared += len(mine & others)
        total += len(mine)
    return shared / total if total and len(texts) > 1 else 0.0


def unrelated_repetition(a_sections: list[str], b_sections: list[str], n: int = N) -> float:
    """The same measure between two unrelated texts: each section of ``a`` against ``b``
    cut to the length of ``a``'s other sections (the reference level of chance overlap)."""
    b_words = words(" ".join(b_sections))
    shared = total = 0
    texts = [t for t in a_sections if t.strip()]
    for k, text in enumerate(texts):
        others = sum(len(words(t)) for j, t in enumerate(texts) if j != k)
        mine = grams(text, n)
        shared += len(mine & grams(" ".join(b_words[:others]), n))
        total += len(mine)
    return shared / total if total else 0.0


def repeated_paragraphs(text: str, earlier: Iterable[str], threshold: float = PARAGRAPH_OVERLAP
                        ) -> tuple[str, list[str]]:
    """``text`` without the paragraphs that restate ``earlier`` texts (or an earlier
    paragraph of itself); returns the text kept and the paragraphs dropped."""
    seen: set[tuple[str, ...]] = set()
    for other in earlier:
        seen |= grams(other)
    kept, dropped = [], []
    for paragraph in re.split(r"\n\s*\n", text):
        mine = grams(paragraph)
        if len(mine) >= 6 and len(mine & seen) >= threshold * len(mine):
            dropped.append(paragraph)
            continue
        kept.append(paragraph)
        seen |= mine
    return "\n\n".join(p for p in kept if p.strip()), dropped


# A sentence restates another when it shares this share of its content 4-grams with it, or
# when their embeddings are this close (a paraphrase: all-MiniLM-L6-v2 puts sentences on
# one subject saying different things at 0.5-0.75).
RESTATED_GRAMS = 0.5
RESTATED_COSINE = 0.85
RESTATED_MIN_WORDS = 6  # shorter bits ("It was cold.") say too little to restate anything

Embed = Callable[[list[str]], "np.ndarray"]


def _sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?])\s+|\n+", text)
    return [p.strip() for p in parts if len(words(p)) >= RESTATED_MIN_WORDS]


def restated_share(sections: Sequence[str], others: Sequence[Sequence[str]] | None = None,
                   embed: Embed | None = None) -> float:
    """Share of the sentences of ``sections`` that restate a sentence of another section
    (``others[k]``: what section k is compared with; default the other sections of the same
    text): most of its content 4-grams in one sentence there, or with ``embed`` (texts →
    unit vectors) a paraphrase of one. Unlike the 4-gram share, names and terms a text
    rightly repeats do not count unless a whole sentence is said again."""
    texts = [t for t in sections if t.strip()]
    if others is None:
        others = [[t for j, t in enumerate(texts) if j != k] for k in range(len(texts))]
    mine = [_sentences(t) for t in texts]
    theirs = [[s for t in group for s in _sentences(t)] for group in others]
    vectors: dict[str, np.ndarray] = {}
    if embed is not None:
        unique = list(dict.fromkeys(s for group in mine + theirs for s in group))
        vectors = dict(zip(unique, embed(unique), strict=True)) if unique else {}
    restated = total = 0
    for own, compared in zip(mine, theirs, strict=True):
        their_grams = [grams(s) for s in compared]
        matrix = np.array([vectors[s] for s in compared]) if vectors and compared else None
        for sentence in own:
            total += 1
            g = grams(sentence)
            near = bool(g) and any(len(g & t) >= RESTATED_GRAMS * len(g) for t in their_grams)
            if not near and matrix is not None:
                near = float((matrix @ vectors[sentence]).max()) >= RESTATED_COSINE
            restated += near
    return restated / total if total else 0.0
