"""What a question is about, and whether the sentence that holds an answer's value is about it.

The grounding check (``grounding``) finds, for each claim of an answer, windows of the
documents (an evidence sentence with its neighbours) that hold the claim's key tokens. A
window is three sentences; a value and the question's subject can sit in different ones of
them: "Harbour Board" in a report's title line, "quay" in the next sentence. So the rule
here is about the **value sentence**, the sentence holding the value that answers the asked
kind (a name for who / which company / where, a number for how many / how much, a date for
when), not about the window:

- **Anchors** (a capitalised name or a number of the question found in few places: "the
  Kelwick ferry"): the value sentence must name all of them.
- **Subject words** (no anchors, a question asking for a value: its rare content words the
  documents write, "quay", "rebuilding"): the value sentence must hold one of them — for a
  number, date or code only where some sentence holds one beside such a value
  (``locating_words``).
- A neighbour supplies them only to a sentence that refers back to it: it starts with a
  pronoun or a demonstrative ("It carried 42 tonnes…" after "The Kelwick ferry…") and names
  nothing capitalised of its own. A title or heading line never borrows from the sentence
  next to it, and a heading merged into the next sentence by the sentence splitter is cut off
  it first.

A question whose subject words the documents never write (a pure paraphrase: "approved the
inspection" for "signed off the audit") has nothing here to require; the embedder decides.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from . import answer_types
from .citations import sentence_units
from .grounding_words import (
    CUE_WORDS,
    MAX_SEARCH_CHARS,
    STOP_WORDS,
    content_words,
    split_words,
    stem,
    stem_bag,
    word_pattern,
    word_tokens,
)
from .types import SourceDocument

ANCHOR_MAX_OCCURRENCES = 5  # a subject word this rare in the documents is specific to it
MAX_COUNTED = 1_000  # occurrences of a question word counted for its weight
HEADING_MAX_CHARS = 100  # a line longer than this is prose, not a title
HEADING_CAPITALISED = 0.6  # share of a heading's words that start with a capital
# A sentence starting with one of these continues the subject of the sentence before it.
REFERRING = frozenset(split_words(
    "it its they their them he his him she her this these that those there such"
))
_MONTHS_AND_DAYS = frozenset(split_words(
    "january february march april may june july august september october november december "
    "monday tuesday wednesday thursday friday saturday sunday"
))
_NAME_KINDS = frozenset({answer_types.PERSON, answer_types.ORGANISATION, answer_types.PLACE,
                         answer_types.TITLE})
# Kinds a sentence is reliably seen to hold (digits, months, weekdays, code shapes).
STRONG_KINDS = frozenset({answer_types.NUMBER, answer_types.DATE, answer_types.CODE})
_TERMINAL = tuple(".!?:;,\"”’')]")


@dataclass
class Subject:
    """What the question is about, as the documents write it."""

    weights: dict[str, float]  # subject word (stem) → rarity weight in the documents
    anchors: frozenset[str]  # the specific names: in at most ANCHOR_MAX_OCCURRENCES places
    unnamed: list[str]  # names of the question the documents never write
    words: frozenset[str] = frozenset()  # rare subject words the documents write (any case)
    located: frozenset[str] = frozenset()  # those required of a value sentence (see
    # ``locating_words``)


def question_subject(question: str, documents: Sequence[SourceDocument]) -> Subject:
    """The question's subject words (stems), each weighted by its rarity in the documents:
    a name on every page ("Picardo" in his biography) says little about which sentence
    answers; a word found in few ("grandchildren") says much. The rarest present names are
    its *anchors* (a made-up place, a rare term); a name the documents never write means
    they do not speak of that subject (a paraphrase changes common words, not names). The
    rare present words of any case are its subject *words*."""
    names = {
        stem(f)
        for i, (raw, f) in enumerate(word_tokens(question))
        if i > 0 and (raw[:1].isupper() or raw[:1].isdigit()) and f not in STOP_WORDS
    }
    weights: dict[str, float] = {}
    anchors, unnamed, words = set(), [], set()
    for word in dict.fromkeys(stem(w) for w in content_words(question)):
        if word in CUE_WORDS:
            continue
        seen = count(word, documents)
        weights[word] = 1 / (1 + math.log1p(seen))
        if 0 < seen <= ANCHOR_MAX_OCCURRENCES:
            words.add(word)
            if word in names:
                anchors.add(word)
        elif word in names and not seen:
            unnamed.append(word)
    return Subject(weights, frozenset(anchors), unnamed, frozenset(words))


def locating_words(
    subject: Subject, kinds: frozenset[str], documents: Sequence[SourceDocument]
) -> frozenset[str]:
    """The subject words to require of a value sentence. For a number, a date or a code:
    all of them when some sentence of the documents holds one of them beside a value of that
    kind (the documents state such a value about the subject: the answer's must be that one,
    "The rebuilding cost £4.2 million" for "How much did the rebuilding cost?"); none when
    no sentence does (the answer is worded unlike the question, "type the digits 40917" for
    "What is the pass key?": the subject words elsewhere say nothing about where it is).
    For a name (person, organisation, place, title) always all of them: a sentence may
    state one in lower case ("the ferries berthed at the southern pier"), so a sentence
    without a name says nothing here."""
    if subject.anchors or not kinds:
        return frozenset()
    kinds = kinds & STRONG_KINDS
    if not kinds:
        return subject.words
    for word in subject.words:
        pattern = word_pattern(word, prefix=True)
        for d in documents:
            for m in pattern.finditer(d.text, 0, MAX_SEARCH_CHARS):
                units = sentence_units(d.text, max(0, m.start() - 600), m.end() + 600)
                s, e = next(((s, e) for s, e in units if s <= m.start() < e), (m.start(), m.end()))
                if kinds & answer_types.sentence_kinds(d.text[s:e]):
                    return subject.words
    return frozenset()


def count(word_stem: str, documents: Sequence[SourceDocument]) -> int:
    """Occurrences of words starting with ``word_stem`` (accents as written or not), bounded."""
    pattern = word_pattern(word_stem, prefix=True)
    seen = 0
    for d in documents:
        for _ in pattern.finditer(d.text, 0, MAX_SEARCH_CHARS):
            seen += 1
            if seen >= MAX_COUNTED:
                return seen
    return seen


def value_tokens(key: Sequence[str], kinds: frozenset[str]) -> list[str]:
    """The claim's key tokens (folded) that are a value of the asked kinds: numbers for a
    number or code, numbers, months and weekdays for a date, names for a person,
    organisation, place or title. Every key token when the question asks no kind."""
    if not kinds:
        return list(key)
    out = []
    for token in key:
        number = token[:1].isdigit()
        calendar = token in _MONTHS_AND_DAYS or token.rstrip("s") in _MONTHS_AND_DAYS
        if (
            (number and kinds & {answer_types.NUMBER, answer_types.CODE, answer_types.DATE})
            or (calendar and kinds & {answer_types.DATE, answer_types.WEEKDAY})
            or (not number and not calendar and kinds & _NAME_KINDS)
        ):
            out.append(token)
    return out


def names_subject(
    text: str, around: tuple[int, int], value: Sequence[str], subject: Subject, asked: bool
) -> bool:
    """Is the sentence of ``text[around]`` holding the ``value`` tokens about the question's
    subject (see the module's docstring)? ``asked``: the question asks for a kind of value
    (only then do subject words, not just anchors, have to be there)."""
    need_all = subject.anchors
    need_one = subject.located if asked and not need_all and value else frozenset()
    if not need_all and not need_one:
        return True
    units = evidence_units(text, *around)
    bags = [stem_bag(text[s:e]) for s, e in units]

    def about(bag: set[str]) -> bool:
        return need_all <= bag if need_all else bool(need_one & bag)

    held = [i for i, b in enumerate(bags) if value and all(stem(t) in b for t in value)]
    if not held:  # no value, or one spread over sentences: the window as a whole, unless
        # a value of the asked kind is at stake (it must stand in one sentence about it)
        return not (asked and value) and about(set().union(*bags))
    value_stems = {stem(t) for t in value}
    for i in held:
        if about(bags[i]):
            return True
        s, e = units[i]
        if refers_back(text[s:e], value_stems) and about(set().union(*bags[max(0, i - 1) : i + 2])):
            return True
    return False


def refers_back(sentence: str, value_stems: set[str]) -> bool:
    """A prose sentence that continues the one before it ("It carried…", "They paid…"):
    it starts with a pronoun or a demonstrative and names nothing capitalised besides the
    value."""
    tokens = word_tokens(sentence)
    if not tokens or tokens[0][1] not in REFERRING or is_heading(sentence):
        return False
    return not any(
        j > 0 and raw[:1].isupper() and f not in STOP_WORDS and stem(f) not in value_stems
        and f not in _MONTHS_AND_DAYS
        for j, (raw, f) in enumerate(tokens)
    )


def is_heading(line: str) -> bool:
    """A title or heading line: short, no closing punctuation, its words mostly
    capitalised ("Harbour Board Annual Report 2023")."""
    line = line.strip()
    if not line or "\n" in line or len(line) > HEADING_MAX_CHARS or line.endswith(_TERMINAL):
        return False
    words = [raw for raw, f in word_tokens(line) if not raw[:1].isdigit() and f not in STOP_WORDS]
    capitalised = [w for w in words if w[:1].isupper()]
    return bool(words) and len(capitalised) >= HEADING_CAPITALISED * len(words)


def evidence_units(text: str, lo: int, hi: int) -> list[tuple[int, int]]:
    """The sentences of ``text[lo:hi]``, each heading line cut off the sentence the splitter
    merged it into (a title has no full stop: "Title\\nFirst sentence." is one unit)."""
    out: list[tuple[int, int]] = []
    for s, e in sentence_units(text, lo, hi):
        start = s
        while (nl := text.find("\n", start, e)) >= 0:
            if not is_heading(text[start:nl]):
                break
            out.append((start, start + len(text[start:nl].rstrip())))
            start = nl + 1
            while start < e and text[start].isspace():
                start += 1
        if e > start:
            out.append((start, e))
    return out
