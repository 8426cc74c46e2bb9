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
# Sentence vectors already computed (the earlier sections are shown to every later one).
_VECTORS: dict[str, np.ndarray] = {}
_VECTORS_KEPT = 8192


def _sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?])\s+|\n+", text)
    return [" ".join(p.split()) for p in parts if len(words(p)) >= RESTATED_MIN_WORDS]


def _vectors(embed: Embed, texts: list[str]) -> list[np.ndarray]:
    missing = [t for t in dict.fromkeys(texts) if t not in _VECTORS]
    if missing:
        if len(_VECTORS) + len(missing) > _VECTORS_KEPT:
            _VECTORS.clear()
        _VECTORS.update(zip(missing, embed(missing), strict=True))
    return [_VECTORS[t] for t in texts]


class SentenceIndex:
    """Sentences said so far, to tell whether a new one restates one of them: half or more
    of its content 4-grams in that one sentence, or with ``embed`` (texts → unit vectors) a
    paraphrase of it (``RESTATED_COSINE``). Sentences under ``RESTATED_MIN_WORDS`` words
    neither restate nor are restated."""

    def __init__(self, texts: Iterable[str] = (), embed: Embed | None = None) -> None:
        self.embed = embed
        self.by_gram: dict[tuple[str, ...], set[int]] = {}
        self.count = 0
        self.matrix: np.ndarray | None = None
        self.add(texts)

    def add(self, texts: Iterable[str]) -> None:
        said = [s for t in texts for s in _sentences(t)]
        for sentence in said:
            for gram in grams(sentence):
                self.by_gram.setdefault(gram, set()).add(self.count)
            self.count += 1
        if self.embed is not None and said:
            new = np.array(_vectors(self.embed, said))
            self.matrix = new if self.matrix is None else np.vstack([self.matrix, new])

    def embed_first(self, texts: Iterable[str]) -> None:
        """Embed the sentences of ``texts`` in one batch (``restates`` then finds them)."""
        if self.embed is not None:
            _vectors(self.embed, [s for t in texts for s in _sentences(t)])

    def restates(self, sentence: str) -> bool:
        if len(words(sentence)) < RESTATED_MIN_WORDS:
            return False
        mine = grams(sentence)
        shared: dict[int, int] = {}
        for gram in mine:
            for k in self.by_gram.get(gram, ()):
                shared[k] = shared.get(k, 0) + 1
        if mine and shared and max(shared.values()) >= RESTATED_GRAMS * len(mine):
            return True
        if self.embed is None or self.matrix is None:
            return False
        vector = _vectors(self.embed, [" ".join(sentence.split())])[0]
        return float((self.matrix @ vector).max()) >= RESTATED_COSINE


def restated_share(sections: Sequence[str], others: Sequence[Sequence[str]] | None = None,
                   embed: Embed | None = None) -> float:
    """Share of the sentences of ``sections`` that restate a sentence of another section
    (``others[k]``: what section k is compared with; default the other sections of the same
    text): see ``SentenceIndex``. Unlike the 4-gram share, names and terms a text rightly
    repeats do not count unless a whole sentence is said again."""
    texts = [t for t in sections if t.strip()]
    if others is None:
        others = [[t for j, t in enumerate(texts) if j != k] for k in range(len(texts))]
    restated = total = 0
    for text, compared in zip(texts, others, strict=True):
        index = SentenceIndex(compared, embed)
        index.embed_first([text])
        for sentence in _sentences(text):
            total += 1
            restated += index.restates(sentence)
    return restated / total if total else 0.0
