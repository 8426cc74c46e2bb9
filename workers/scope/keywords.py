"""Keywords a rewrite must keep: numbers, dates, names and terms rare in the text.

No models: regular expressions for numbers, dates and capitalised names; "rare terms" are
long words whose in-text document frequency (over the chunks) is low, ranked by an
idf computed inside the text itself (no corpus).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence

_MONTHS = (
    "January|February|March|April|May|June|July|August|September|October|November|December|"
    "Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec"
)
_DATE = re.compile(
    rf"\b(?:\d{{1,2}} (?:{_MONTHS})\.?(?: \d{{4}})?|(?:{_MONTHS})\.? \d{{1,2}}(?:, \d{{4}})?"
    rf"|\d{{4}}-\d{{2}}-\d{{2}}|\d{{1,2}}/\d{{1,2}}/\d{{2,4}})\b"
)
_NUMBER = re.compile(r"(?<![\w.])[$€£]?\d[\d,]*(?:\.\d+)?%?(?![\w])")
# One way to match each space run (no `\s+ … \s*` pair): a long run of spaces after a
# name must not backtrack quadratically.
_NAME = re.compile(
    r"\b[A-Z][\w'’-]*[a-z0-9][\w'’-]*(?:\s+(?:(?:of|de|von|van|del|da)\s+)?[A-Z][\w'’-]+)*"
)
# A capitalised word inside a sentence (after a lower-case letter, comma or semicolon).
_INNER_CAP = re.compile(r"[a-z,;]\s+([A-Z][\w'’-]*)")
_SENTENCE_END = frozenset(".!?:\"“'‘(")
_WORD = re.compile(r"[A-Za-z][A-Za-z-]{2,}")
_TECHNICAL = re.compile(r"\b(?:[a-z]+[A-Z]\w*|[A-Za-z]+\d\w*|[a-z]{3,}-[a-z]{3,}(?:-[a-z]+)*)\b")
_COMMON_CAPS = frozenset(
    """
    The A An This That These Those It Its In On At For From With By But And Or If When While
    As He She They We I You His Her Their Our My Your There Here What Which Who Why How
    After Before Then So Yet Also However Although Because Since Some Many Most One Two Not
    No All Each Every Such Both Either Neither Once Now Still Even Only Just Other Another
    Thus Therefore Moreover Instead Perhaps Maybe Yes Of To Is Was Be Do Did Does I'm I've
    I'd I'll It's That's There's Really Actually Well Oh Should Would Could Can Will May
    Might Must Shall
    """.split()  # noqa: SIM905 - a word list reads better than 90 quoted strings
)
_TITLES = frozenset({"dr", "mr", "mrs", "ms", "prof", "st", "sir", "mt"})
RANK = {"date": 4, "number": 3, "name": 2, "term": 1}


def _opens_sentence(text: str, start: int) -> bool:
    """True if only spaces stand between ``start`` and a line start or sentence punctuation.
    Walks back over the space run alone, so all matches together cost linear time."""
    i = start
    while i > 0 and text[i - 1].isspace():
        i -= 1
        if text[i] == "\n":
            return True
    return start == 0 or (i > 0 and text[i - 1] in _SENTENCE_END)


def _inner_capitals(text: str) -> set[str]:
    """Every capitalised word (and its parts before an apostrophe or hyphen) that appears
    inside a sentence: one pass, instead of one search of the whole text per name."""
    out: set[str] = set()
    for m in _INNER_CAP.finditer(text):
        word = m.group(1)
        out.add(word.strip("'’-"))
        out.update(word[:i] for i, ch in enumerate(word) if ch in "'’-" and i)
    return out


def _names(text: str) -> list[str]:
    out = []
    inner: set[str] | None = None
    for m in _NAME.finditer(text):
        words = m.group(0).split()
        at_start = _opens_sentence(text, m.start())
        while words and (words[0] in _COMMON_CAPS or (at_start and words[0].endswith("ly"))):
            words, at_start = words[1:], False
        if not words:
            continue
        name = " ".join(words).strip("'’-")
        # A lone capitalised word opening a sentence is a name only if it is also
        # capitalised somewhere inside a sentence.
        if len(words) == 1 and at_start:
            inner = _inner_capitals(text) if inner is None else inner
            if name not in inner:
                continue
        if len(name) > 1:
            out.append(name)
    return out


def _phrases(keyword: str) -> set[str]:
    """The keyword's runs of whole words (lower case): what `in` on the keyword tested for,
    without testing every earlier keyword again (that was quadratic in a long text)."""
    low = keyword.lower()
    words = re.findall(r"[\w.$€£%'’-]+", low)
    runs = {" ".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, len(words) + 1)}
    parts = {p for w in words for p in re.split(r"['’-]", w.rstrip(".,")) if p}
    # Short pieces anywhere inside it (the "4" of "2004", "web" of "website").
    short = {low[i:i + n] for n in range(1, 5) for i in range(len(low) - n + 1)}
    return runs | parts | short | {w.rstrip(".,") for w in words} | {low}


def candidates(text: str) -> list[tuple[str, str]]:
    """(keyword, kind) in order of first appearance, without duplicates; a number or name
    that is part of an earlier keyword (the year of a date, a surname) is not repeated."""
    seen: dict[str, tuple[str, str]] = {}
    inside: set[str] = set()  # every word run of the keywords kept so far

    def keep(key: str, value: tuple[str, str]) -> None:
        if key not in seen:
            seen[key] = value
            inside.update(_phrases(key))

    for m in _DATE.finditer(text):
        keep(m.group(0).lower(), (m.group(0), "date"))
    for m in _NUMBER.finditer(text):
        value = m.group(0).rstrip(",")
        if value.lower() not in inside:
            keep(value.lower(), (value, "number"))
    months = {m.lower() for m in _MONTHS.split("|")}
    for name in _names(text):
        low = name.lower().rstrip(".")
        # Skip months (the dates carry them), titles, and names inside a kept keyword.
        if low in months or low in _TITLES or low in inside:
            continue
        keep(low, (name, "name"))
    return list(seen.values())


def rare_terms(chunks: Sequence[str], min_length: int = 7) -> list[list[str]]:
    """Per chunk: its topical terms, best first. A term is a long word repeated inside the
    chunk but found in few other chunks (idf computed over the text's own chunks), or a
    technical-looking word (hyphenated, with digits, or CamelCase)."""
    words_per_chunk = [Counter(w.lower() for w in _WORD.findall(c)) for c in chunks]
    technical = [set(_TECHNICAL.findall(c)) for c in chunks]
    df = Counter(w for counts in words_per_chunk for w in counts)
    n = len(chunks)
    out = []
    for counts, tech in zip(words_per_chunk, technical, strict=True):
        scored = [
            (math.log((n + 1) / (df[w] + 0.5)) * min(c, 3), w)
            for w, c in counts.items()
            if len(w) >= min_length and c >= 2 and df[w] <= max(1, n // 2)
        ]
        terms = [w for _, w in sorted(scored, reverse=True)]
        out.append([*sorted(tech), *terms])
    return out


def chunk_keywords(
    text: str,
    rare: Sequence[str],
    budget_tokens: int,
    count: Callable[[str], int],
    share: float = 0.3,
) -> list[str]:
    """The chunk's keywords that fit in ``share`` of its budget, most important first
    (dates, numbers, names, then rare terms); a chunk with a small budget cannot keep all."""
    found = candidates(text)
    ranked = sorted(found, key=lambda kw: -RANK[kw[1]])
    names = {k.lower() for k, _ in found}
    terms = [(w, "term") for w in rare[:5] if not any(w in n for n in names)]
    room = max(0.0, share * budget_tokens)
    chosen: list[str] = []
    for keyword, _kind in [*ranked, *terms]:
        cost = count(" " + keyword)
        if cost > room:
            continue
        chosen.append(keyword)
        room -= cost
    return chosen


def contains(text: str, keyword: str) -> bool:
    """Case-insensitive, whitespace-insensitive, not inside a longer word or number."""
    pattern = r"\s+".join(re.escape(part) for part in keyword.split())
    return re.search(rf"(?<![\w]){pattern}(?![\w])", text, re.IGNORECASE) is not None


def kept(text: str, keywords: Sequence[str]) -> list[str]:
    return [k for k in keywords if contains(text, k)]
