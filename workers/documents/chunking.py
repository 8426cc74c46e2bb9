"""Token-aware chunking on sentence boundaries with exact character spans.

Every chunk satisfies ``text[chunk.start:chunk.end] == chunk.text``. Tokens are counted with
the caller's ``count_tokens`` (the embedder's tokenizer for retrieval chunks, the LLM's for
window-sized segments). The work is linear in the text: each sentence is counted once, each
chunk is checked once, and an over-long sentence (or a 10 MB line with no full stop) is cut
into windows whose size adapts to the measured characters-per-token.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from icu4py.breakers import SentenceBreaker

from .language import cjk_runs, has_cjk, without_cjk

TokenCounter = Callable[[str], int]

# Sentences are ICU's (Unicode UAX #29 sentence rules, with the language's list of
# abbreviations that do not end a sentence: "Mr. Smith", "z.B."): the stops of every script
# (CJK 。！？ need no space after them), closing quotes and brackets after a stop, no break
# before a lower-case word. ICU's rules run as a state machine: linear in the text. A blank
# line ends a sentence; a single newline does not (hard-wrapped prose breaks lines
# mid-sentence), so ICU reads single newlines as spaces (same length: offsets stay).
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_SURROGATE = re.compile("[\ud800-\udfff]")  # ICU reads UTF-8, which has no lone surrogates
# UAX #29 does not end a sentence before a word that starts with a digit ("e.g. 3 dogs"), so
# "It cost £4.2 million. 312 vessels called." would stay one: a stop after a word
# ending in 3 lower-case letters, then a space and a digit, ends one (not "p. 4", "Fig. 3").
_STOP_BEFORE_NUMBER = re.compile(r"[.!?]\s+(?=\d)")
# Oversized sentences are cut into windows: start by guessing this many chars per token.
_INITIAL_CHARS_PER_TOKEN = 4.0
# Never hand the tokenizer a piece longer than this many chars per allowed token.
_MAX_CHARS_PER_TOKEN = 12


@dataclass(frozen=True)
class Chunk:
    index: int
    start: int
    end: int
    text: str
    tokens: int


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    tokens: int


def sentence_locale(language: str) -> str:
    """The ICU locale for an ISO 639-1 code: its sentence rules with its abbreviations
    ("" → the root rules, which know every script's stops but no abbreviations)."""
    return f"{language}@ss=standard" if language else ""


def _single_newlines_as_spaces(text: str) -> str:
    if "\n" not in text:
        return text
    out, last = [], 0
    for m in _PARAGRAPH_BREAK.finditer(text):
        out += [text[last:m.start()].replace("\n", " "), m.group()]
        last = m.end()
    out.append(text[last:].replace("\n", " "))
    return "".join(out)


def _breaker(text: str, language: str) -> SentenceBreaker:
    try:
        return SentenceBreaker(text, sentence_locale(language))
    except UnicodeEncodeError:
        return SentenceBreaker(_SURROGATE.sub("\ufffd", text), sentence_locale(language))


def sentence_spans(text: str, language: str = "") -> Iterator[tuple[int, int]]:
    """Spans of sentences, whitespace trimmed, lazily (a generator). ``language``: the
    text's ISO 639-1 code, for its abbreviations ("" if unknown)."""
    pos, opening = 0, -1
    for piece in _breaker(_single_newlines_as_spaces(text), language):
        start, pos = (pos if opening < 0 else opening), pos + len(piece)
        end, opening = _trim(text, start, pos), -1
        # UAX #29 counts an opening bracket as closing punctuation: after a CJK stop with no
        # space ("か？「はい。」") it would end the sentence before it; it opens the next one.
        cut = end
        while cut > start and unicodedata.category(text[cut - 1]) == "Ps":
            cut -= 1
        if start < cut < end:
            opening, end = cut, _trim(text, start, cut)
        while start < end and text[start].isspace():
            start += 1
        if end > start:
            yield from _number_starts(text, start, end)
    if opening >= 0:
        yield from _number_starts(text, opening, _trim(text, opening, len(text)))


def _number_starts(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """[start, end) cut before each sentence that starts with a number (see above)."""
    for m in _STOP_BEFORE_NUMBER.finditer(text, start, end):
        word = text[max(start, m.start() - 3):m.start()]
        if len(word) == 3 and word.isalpha() and word.islower():
            yield start, m.start() + 1
            start = m.end()
    yield start, end


def _trim(text: str, start: int, end: int) -> int:
    """``end`` moved back over trailing whitespace, not before ``start``."""
    while end > start and text[end - 1].isspace():
        end -= 1
    return end


def _units(
    text: str, count_tokens: TokenCounter, max_tokens: int, language: str = ""
) -> Iterator[_Unit]:
    for start, end in sentence_spans(text, language):
        if end - start <= max_tokens * _MAX_CHARS_PER_TOKEN:
            tokens = count_tokens(text[start:end])
            if tokens <= max_tokens:
                yield _Unit(start, end, tokens)
                continue
        yield from _windows(text, start, end, count_tokens, max_tokens)


def _cut_back(text: str, lo: int, hi: int) -> int:
    """A cut position at or before ``hi``: after the last line break in [lo, hi), else after
    the last space or tab, else ``hi`` itself."""
    for sep in ("\n", " ", "\t"):
        pos = text.rfind(sep, lo, hi)
        if pos > lo:
            return pos + 1
    return hi


def _windows(
    text: str, start: int, end: int, count_tokens: TokenCounter, max_tokens: int
) -> Iterator[_Unit]:
    """Cut an over-long sentence into pieces of at most ``max_tokens``, each counted O(1) times."""
    chars_per_token = _INITIAL_CHARS_PER_TOKEN
    pos = start
    while pos < end:
        size = max(1, int(max_tokens * chars_per_token * 0.95))
        cut = end if pos + size >= end else _cut_back(text, pos + size // 2, pos + size)
        tokens = count_tokens(text[pos:cut])
        while tokens > max_tokens and cut - pos > 1:
            size = max(1, int((cut - pos) * max_tokens / tokens * 0.9))
            cut = _cut_back(text, pos + size // 2, pos + size)
            tokens = count_tokens(text[pos:cut])
        if tokens:
            chars_per_token = max(1.0, (cut - pos) / tokens)
        piece_end = cut
        while piece_end > pos and text[piece_end - 1].isspace():
            piece_end -= 1
        if piece_end > pos:
            yield _Unit(pos, piece_end, tokens)
        pos = cut
        while pos < end and text[pos].isspace():
            pos += 1


def _pack(
    text: str,
    units: Iterator[_Unit],
    count_tokens: TokenCounter,
    max_tokens: int,
    overlap_tokens: int,
) -> Iterator[Chunk]:
    index = 0
    current: list[_Unit] = []
    total = 0

    def emit(group: list[_Unit]) -> tuple[Chunk, list[_Unit]]:
        """Build a chunk; if the exact count overflows (tokens are not quite additive),
        hand trailing units back to be carried into the next chunk."""
        carry: list[_Unit] = []
        while True:
            start, end = group[0].start, group[-1].end
            tokens = count_tokens(text[start:end]) if len(group) > 1 else group[0].tokens
            if tokens <= max_tokens or len(group) == 1:
                return Chunk(index, start, end, text[start:end], tokens), carry
            carry.insert(0, group.pop())

    pending: list[_Unit] = []
    unit_iter = iter(units)
    while True:
        unit = pending.pop(0) if pending else next(unit_iter, None)
        if unit is None:
            break
        if current and total + unit.tokens > max_tokens:
            chunk, carry = emit(current)
            yield chunk
            index += 1
            pending = carry + [unit] + pending
            current = _overlap(current, overlap_tokens) if overlap_tokens else []
            total = sum(u.tokens for u in current)
            # Make room for the next unit by dropping overlap from the front if needed.
            while current and total + pending[0].tokens > max_tokens:
                total -= current.pop(0).tokens
            continue
        current.append(unit)
        total += unit.tokens
    if current:
        while current:
            chunk, carry = emit(current)
            yield chunk
            index += 1
            current = carry


def _overlap(units: list[_Unit], overlap_tokens: int) -> list[_Unit]:
    """Trailing units of the previous chunk worth at most ``overlap_tokens`` (never all)."""
    kept: list[_Unit] = []
    total = 0
    for unit in reversed(units[1:]):
        if total + unit.tokens > overlap_tokens:
            break
        kept.insert(0, unit)
        total += unit.tokens
    return kept


def chunk_text(
    text: str,
    count_tokens: TokenCounter,
    max_tokens: int,
    overlap_tokens: int = 0,
    language: str = "",
) -> list[Chunk]:
    """Split ``text`` into chunks of at most ``max_tokens`` that end on sentence boundaries.

    ``overlap_tokens`` repeats up to that many tokens of whole trailing sentences of each chunk
    at the start of the next one. Only a single sentence longer than ``max_tokens`` is cut
    inside, at whitespace. ``language``: the text's ISO 639-1 code ("" if unknown).
    """
    if max_tokens < 1:
        raise ValueError("max_tokens must be at least 1")
    if not 0 <= overlap_tokens < max_tokens:
        raise ValueError("overlap_tokens must be in [0, max_tokens)")
    units = _units(text, count_tokens, max_tokens, language)
    return list(_pack(text, units, count_tokens, max_tokens, overlap_tokens))


def segments(
    text: str, budget_tokens: int, count_tokens: TokenCounter, language: str = ""
) -> Iterator[Chunk]:
    """Window-sized segments (no overlap), cut lazily as the caller consumes them.

    For Chain-of-Agents / XL3M: ``budget_tokens`` is what is left of the model's window after
    the instructions, the question and room for the output.
    """
    if budget_tokens < 1:
        raise ValueError("budget_tokens must be at least 1")
    units = _units(text, count_tokens, budget_tokens, language)
    return _pack(text, units, count_tokens, budget_tokens, 0)


def whitespace_token_counter(text: str) -> int:
    """A tokenizer-free counter (words), for callers without a model at hand. A CJK
    character counts as a word: Chinese and Japanese put no spaces between words."""
    if not has_cjk(text):
        return len(text.split())
    return len(without_cjk(text).split()) + sum(len(run) for run in cjk_runs(text))


# A sentence shorter than this is read with the next one ("Remember it.", "Yes."), up to
# this many sentences per unit.
MIN_WINDOW_CHARS = 25
MAX_WINDOW_SENTENCES = 3


def sentence_windows(
    text: str, start: int = 0, end: int | None = None, min_chars: int = MIN_WINDOW_CHARS,
    language: str = "",
) -> list[tuple[int, int]]:
    """The fine-grained retrieval units of ``text[start:end]`` (``text`` coordinates):
    single sentences, a short one joined to the sentences after it (up to
    ``MAX_WINDOW_SENTENCES``; a short last one to the unit before), so that no unit is a
    bare "Yes." One pass over the sentences."""
    end = len(text) if end is None else end
    out: list[tuple[int, int]] = []
    pending, joined = -1, 0  # start of the short sentences waiting for the next one
    for s, e in sentence_spans(text[start:end], language):
        s, e = s + start, e + start
        if pending >= 0:
            s = pending
        joined += 1
        if e - s < min_chars and joined < MAX_WINDOW_SENTENCES:
            pending = s
            continue
        out.append((s, e))
        pending, joined = -1, 0
    if pending >= 0:
        tail_end = len(text[:end].rstrip())
        if out:
            out[-1] = (out[-1][0], tail_end)
        elif tail_end > pending:
            out.append((pending, tail_end))
    return out
