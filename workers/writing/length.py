"""Length control: count words, score a length, and the count-continue-trim loop.

A model asked for "300 words" rarely writes 300: small models stop early, large ones run
on. So we never hope: we count what came back, ask for the rest ("continue") while it is
short, and cut at a sentence end when it is long. Every long output goes through
``write_to_length``: a section of a long document, or a chat answer "in 300 words".
"""

from __future__ import annotations

import functools
import math
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from workers.llm.base import LLMBackend, Usage
from workers.writing.overlap import Embed, SentenceIndex

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
# A CJK character counts as a word (LongBench-Write counts Chinese by characters);
# elsewhere a word is a run of non-space characters with at least one letter or digit.
_WORD = re.compile(rf"[{_CJK}]|[^\s{_CJK}]+")
_HAS_ALNUM = re.compile(r"[^\W_]")
# A sentence ends at . ! ? … (optionally followed by closing quotes/brackets), or at a
# line break (list items and headings end without a full stop).
# Read from the start of a run of stops, possessively: a long run of dots is read once.
_SENTENCE_END = re.compile(r"(?<![.!?…。！？])[.!?…。！？]++[\"'”’)\]]*+(?=\s|$)|\n")
# A number from its first digit, groups of thousands at most 4 (10^15 words), possessive
# repeats: no digit or space run is re-read from each position (linear on hostile text).
_NUMBER = (r"(?P<number>(?<!\d)(?:\d{1,3}(?:[,\u202f ]\d{3}){1,4}+|\d++(?:\.\d++)?))"
           r"\s*+(?P<k>k|thousand)?")
_REQUEST = re.compile(
    rf"(?P<prefix>\b(?:in|about|around|approximately|roughly|exactly|of|at least|at most|"
    rf"no more than|no shorter than|no fewer than|under|within|some|up to|~)\s++)?~?{_NUMBER}"
    rf"(?P<sep>[\s-]*+)words?\b", re.IGNORECASE)

TOKENS_PER_WORD = 1.4  # a first guess for English; refined from what the model returns
# Words one round may add: a long round drifts (with a repetition penalty, every common
# token is penalised once it has been used, and a small model ends up gluing made-up
# names together); a new round starts from a short prompt and a new angle.
ROUND_WORDS = 300
# A mild repetition penalty for long outputs (writer.py says what it measured).
REPETITION_PENALTY = 1.1
# A run of 50+ letters without a space (Latin, Greek, Cyrillic; scripts written without
# spaces are not checked) is no word: the model has run off the rails.
_RUNAWAY = re.compile(r"[A-Za-z\u00c0-\u024f\u0370-\u03ff\u0400-\u04ff]{50,}")


def count_words(text: str) -> int:
    """Words as LongBench-Write counts them: English words plus CJK characters."""
    return sum(1 for w in _WORD.findall(text) if _HAS_ALNUM.search(w))


def length_score(required: int, actual: int) -> float:
    """LongBench-Write length score S_l in [0, 100]: 100 on target, an overshoot is
    punished more gently (y/x - 1)/3 than a shortfall (x/y - 1)/2."""
    if required <= 0:
        raise ValueError("the required length must be positive")
    if actual <= 0:
        return 0.0
    if actual > required:
        return 100.0 * max(0.0, 1.0 - (actual / required - 1.0) / 3.0)
    return 100.0 * max(0.0, 1.0 - (required / actual - 1.0) / 2.0)


def requested_words(question: str) -> int | None:
    """The length asked for in a question: "in 300 words", "about 3,000 words",
    "a 500-word essay", "2k words". None when no length is asked for."""
    for match in _REQUEST.finditer(question or ""):
        value = float(re.sub(r"[,\u202f ]", "", match.group("number")))
        if match.group("k"):
            value *= 1000
        words = int(round(value))
        # "in 300 words", "a 500-word essay", "2,000 words": a length. "the 3 words in the
        # title" is none: a bare small number needs a preposition or the hyphen.
        asked = match.group("prefix") or "-" in match.group("sep") or words >= 50
        if words > 0 and asked:
            return words
    return None


def sentences(text: str) -> list[str]:
    """The text cut after each sentence end; joined back they give the text again."""
    parts, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        parts.append(text[start:match.end()])
        start = match.end()
    if start < len(text):
        parts.append(text[start:])
    return parts


def normalise(sentence: str) -> str:
    return " ".join(re.findall(r"[^\W_]+", sentence.lower()))


def trim_to_words(text: str, limit: int) -> str:
    """Cut ``text`` to about ``limit`` words at a sentence end.

    Picks the sentence end whose length scores best against ``limit`` (a little over
    beats a lot under); when no sentence end comes close, cuts at word ``limit`` and
    closes the sentence.
    """
    if count_words(text) <= limit:
        return text
    best, best_score, words, kept = "", -1.0, 0, ""
    for part in sentences(text):
        kept += part
        words += count_words(part)
        if words == 0 or not _SENTENCE_END.search(part):  # a trailing fragment: no end
            continue
        score = length_score(limit, words)
        if score > best_score:
            best, best_score = kept, score
        if words > limit * 1.3:
            break
    if best_score >= 90:
        return best.rstrip()
    # No usable sentence end: a hard cut at the word limit, closed with a full stop.
    cut = head_words(text, limit).rstrip().rstrip(",;:-–—")
    return cut if cut.endswith((".", "!", "?", "…")) else cut + "."


def head_words(text: str, limit: int) -> str:
    """The exact beginning of ``text`` up to the end of its word ``limit`` (all of it when
    shorter): nothing in it is changed, so it stays a span of the source."""
    count = 0
    for match in _WORD.finditer(text):
        if _HAS_ALNUM.search(match.group()):
            count += 1
            if count == limit:
                return text[:match.end()]
    return text


class RepetitionGuard:
    """Drops sentences already written (here or in ``seen``), exactly or nearly (most of
    their word 4-grams seen before), and says when the model is looping, so the stream can
    be stopped instead of decoding the loop to max_tokens."""

    def __init__(self, seen: Iterable[str] = (), max_repeats: int = 3, overlap: float = 0.75,
                 restated: SentenceIndex | None = None):
        # ``restated``: also drop a sentence restating one sentence said before (half its
        # content 4-grams, or a paraphrase), as the writing benchmark counts restatements.
        self.restated = restated
        self.seen: set[str] = set()
        self.grams: set[tuple[str, ...]] = set()
        self.max_repeats, self.overlap = max_repeats, overlap
        self.repeats = 0  # consecutive repeated sentences
        self.dropped = 0
        for sentence in seen:
            self._remember(normalise(sentence))

    def _remember(self, key: str) -> None:
        words = key.split()
        if len(words) >= 3:
            self.seen.add(key)
            self.grams.update(_grams(words))

    def accept(self, sentence: str) -> bool:
        key = normalise(sentence)
        words = key.split()
        if len(words) < 3:  # short bits ("Yes.", a heading) are never repeats
            return bool(key) or sentence.strip() == "" or sentence == "\n"
        grams = _grams(words)
        near = len(words) >= 8 and sum(g in self.grams for g in grams) >= self.overlap * len(grams)
        if key in self.seen or near or (self.restated is not None
                                        and self.restated.restates(sentence)):
            self.repeats += 1
            self.dropped += 1
            return False
        self.repeats = 0
        self._remember(key)
        if self.restated is not None:
            self.restated.add([sentence])
        return True

    @property
    def looping(self) -> bool:
        return self.repeats >= self.max_repeats


def _grams(words: list[str], n: int = 4) -> list[tuple[str, ...]]:
    return [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]


# What a text still lacks: (words to keep free for it, the angle asking for it, "" if none).
Needs = Callable[[str], tuple[int, str]]


@dataclass
class LengthResult:
    text: str
    words: int
    rounds: int
    trace: list[dict[str, Any]] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    seconds: float = 0.0
    dropped_sentences: int = 0  # repeats removed

    @property
    def generated_tokens(self) -> int:
        return self.usage.completion_tokens


CONTINUE_PROMPT = (
    "{request}\n\nPart of it is written already; it ends like this:\n«{tail}»\n\n"
    "Write only the next paragraph, about {remaining} words. {angle} Do not repeat what is "
    "written, do not start over, no heading."
)
# A new angle for each continuation: a small model asked only to "continue" writes the
# same paragraph again; asked for an example, a cause or a consequence it writes new text.
ANGLES = [
    "Give a concrete example.", "Explain the causes behind it.", "Describe the consequences.",
    "Add facts, names or numbers.", "Compare it with something else.",
    "Tell a short story that shows it.", "Discuss a problem or an objection.",
    "Describe how it works in practice.", "Explain why it matters to people.",
    "Look at it from another point of view.",
]


# Title markers SmolLM2 likes to emit ("<<The History of X>>").
_MARKUP = re.compile(r"<<[^<>\n]{0,200}>>[ \t]*\n*")


def drop_unfinished(text: str) -> str:
    """``text`` without a trailing unfinished sentence (a reply cut off by its token room);
    "" when no sentence in it is finished."""
    parts = sentences(text.rstrip())
    if not parts or _SENTENCE_END.search(parts[-1]):
        return text
    return "".join(parts[:-1]).rstrip()


def _end_cleanly(text: str, target: int) -> str:
    """Drop a trailing half sentence (a round cut off by max_tokens) when the text stays
    on target without it (length score >= 90)."""
    kept = drop_unfinished(text)
    if not kept:
        return text
    return kept if length_score(target, max(count_words(kept), 1)) >= 90 else text


def _join(text: str, more: str) -> str:
    if not text:
        return more.lstrip()
    if not more.strip():
        return text
    if more[0].isspace() or text[-1].isspace():
        return text.rstrip() + ("\n\n" if more.startswith("\n\n") else " ") + more.lstrip()
    return text + " " + more


def last_words(text: str, words: int) -> str:
    parts = text.split()
    return text if len(parts) <= words else "… " + " ".join(parts[-words:])


def _continuation(messages: Sequence[dict], template: str, text: str, remaining: int,
                  angle: str, brief: str | None = None) -> list[dict]:
    """One self-contained request for the next paragraph: the request (``brief``, else the
    original last user turn), the tail of what is written and a new angle. (Replaying the
    text as the model's own turn and saying "continue" makes a small model write the same
    paragraph again.)"""
    asked = [dict(m) for m in messages]
    last = max((i for i, m in enumerate(asked) if m.get("role") == "user"), default=None)
    request = brief or (asked[last]["content"] if last is not None else "")
    if text:
        content = template.format(request=request, tail=last_words(text, 80),
                                  remaining=remaining, angle=angle)
    else:  # nothing came back yet: the request again, from an angle
        content = f"{request}\n\n{angle} Write about {remaining} words."
    if last is None:
        return [*asked, {"role": "user", "content": content}]
    asked[last] = {"role": "user", "content": content}
    return asked[:last + 1]


def stream_round(backend: LLMBackend, messages: Sequence[dict], guard: RepetitionGuard,
                  on_token: Callable[[str], None] | None, sampling: dict[str, Any],
                  enough: int | None = None,
                  hold: Callable[[str], int] | None = None) -> tuple[str, Usage, bool]:
    """One generation; returns the accepted text (repeats dropped), usage, looped?

    With ``enough`` (words), the stream is stopped at the first sentence end once that
    many words are accepted: nothing is decoded only to be trimmed; ``hold(accepted)``
    words fewer while the accepted text still needs them (room kept for what is missing).
    A runaway (letters glued into one endless "word") stops the round like a loop, and is
    dropped."""
    accepted, pending, raw, looped = [], "", [], False
    words = 0
    usage: Usage | None = None
    guard.repeats = 0  # a loop of the last round says nothing about this one
    events = backend.stream(list(messages), **sampling)
    try:
        for event in events:
            if event.usage is not None:
                usage = event.usage
                continue
            if on_token and event.delta:
                on_token(event.delta)
            pending += event.delta
            raw.append(event.delta)
            parts = sentences(pending)
            complete = parts if _SENTENCE_END.search(parts[-1] or "") else parts[:-1]
            pending = pending[sum(len(p) for p in complete):]
            for part in complete:
                if _RUNAWAY.search(part):
                    looped = True
                    break
                if guard.accept(part):
                    accepted.append(part)
                    words += count_words(part)
            if looped or guard.looping or _RUNAWAY.search(pending):
                looped = True
                break
            if enough is not None and words >= enough - (
                    hold("".join(accepted)) if hold and complete else 0):
                pending = ""  # a sentence just ended: the rest of this delta is not needed
                break
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()  # frees the model at once when we stopped a loop
    if pending and not looped and guard.accept(pending):
        accepted.append(pending)
    if usage is None:  # stopped early: count what was generated ourselves
        generated = "".join(raw)
        usage = Usage(backend.count_tokens(list(messages)),
                      backend.count_tokens(generated) if generated else 0)
    return "".join(accepted), usage, looped


def _held(needs: Needs, text: str, more: str) -> int:
    """Words ``needs`` keeps free once ``more`` joins ``text``."""
    return needs(_join(text, more))[0]


def default_rounds(target_words: int) -> int:
    """Rounds allowed for a target: a small model writes 100–250 words per answer, and
    some rounds are lost to repeats."""
    return min(20, 3 + math.ceil(target_words / 100))


def write_to_length(
    backend: LLMBackend,
    messages: Sequence[dict],
    target_words: int,
    *,
    on_token: Callable[[str], None] | None = None,
    max_rounds: int | None = None,
    seen: Iterable[str] = (),
    continue_prompt: str = CONTINUE_PROMPT,
    brief: str | None = None,
    tolerance: float = 0.05,
    angles: Sequence[str] | None = None,
    needs: Needs | None = None,
    restated: Embed | bool = False,
    **sampling: Any,
) -> LengthResult:
    """Ask ``messages``, then count, continue while short and trim when long.

    Each continuation shows the model the tail of its own text and asks for the next
    paragraph from a new angle (sampled, a new seed each round): a small model asked
    merely to "continue" repeats itself. A round adds at most ``ROUND_WORDS`` and is
    stopped at the first sentence end once its words are there, so nothing is generated
    only to be cut (``max_tokens`` leaves room to finish the sentence). Sentences
    repeating earlier ones (here or in ``seen``, e.g. earlier sections) are dropped as they
    stream, and a looping or runaway round is stopped early.
    ``brief``: the request restated in short for the continuation rounds (a long prompt
    is then prefilled once, not again every round; default: the last user turn whole).
    ``angles``: what the continuation rounds ask for in turn (default ``ANGLES``).
    ``needs(text)``: what the text still lacks, as (words to keep free for it, the angle
    asking for it): a round stops that many words early while it lacks it, and the next
    round asks for it, so a missing item is written in the flow of the text instead of
    added afterwards in place of words already decoded (``checks.needs``).
    ``restated``: also drop sentences restating one sentence said before (overlap's
    ``SentenceIndex``; given an embedder, paraphrases too).
    ``sampling`` goes to the backend (temperature, top_p, seed, repetition_penalty). Stops
    when on target, after ``max_rounds`` (default from the target), or after 4 rounds
    adding nothing.
    """
    if target_words < 1:
        raise ValueError("the target length must be at least one word")
    sampling.pop("max_tokens", None)
    max_rounds = max_rounds or default_rounds(target_words)
    started = time.perf_counter()
    seen = list(seen)
    guard = RepetitionGuard(seen, restated=None if restated is False else SentenceIndex(
        seen, None if restated is True else restated))
    text, usage, trace = "", Usage(), []
    ratio = TOKENS_PER_WORD
    window = backend.context_window
    rounds = empty_rounds = 0
    seed = sampling.get("seed")
    while rounds < max_rounds:
        remaining = target_words - count_words(text)
        if remaining <= max(2, int(target_words * tolerance)):
            break
        options = dict(sampling)
        if rounds == 0 and not empty_rounds:
            asked = list(messages)
        else:
            turns = angles or ANGLES
            angle = (needs(text)[1] if needs else "") or \
                turns[(rounds + (seed or 0)) % len(turns)]
            # One paragraph at a time: asked for "450 more words" a small model rambles
            # and loops; max_tokens below still leaves room for all that is missing.
            asked = _continuation(messages, continue_prompt, text, min(remaining, 200), angle,
                                  brief)
            if not options.get("repetition_penalty"):  # hotter, else it writes it again
                options["temperature"] = max(0.8, float(options.get("temperature") or 0))
            options.setdefault("top_p", 0.95)
            options["seed"] = (seed or 0) * 100 + rounds + empty_rounds
            guard.max_repeats = 2
        # Room for this round's words and then some (the round is stopped at the first
        # sentence end past them, so the margin costs nothing when it is not needed).
        enough = min(remaining, ROUND_WORDS)
        max_tokens = int(enough * ratio * 1.3) + 24
        prompt_tokens = backend.count_tokens(asked)
        max_tokens = max(16, min(max_tokens, window - prompt_tokens - 8))
        round_started = time.perf_counter()
        # The first round keeps room for what the text lacks; a later one asks for it.
        first = rounds == 0 and not empty_rounds
        hold = functools.partial(_held, needs, text) if needs and first else None
        more, round_usage, looped = stream_round(
            backend, asked, guard, on_token, {**options, "max_tokens": max_tokens},
            enough=enough, hold=hold)
        rounds += 1
        usage = usage + round_usage
        added = count_words(more)
        if added >= 20 and round_usage.completion_tokens and not looped:
            # Learn this model's tokens per word (bounded: a few odd rounds must not
            # make the next request huge or tiny).
            ratio = min(2.5, max(1.1, round_usage.completion_tokens / added))
        trace.append({"round": rounds, "asked_words": remaining, "max_tokens": max_tokens,
                      "tokens_out": round_usage.completion_tokens, "words_added": added,
                      "looped": looped, "seconds": round(time.perf_counter() - round_started, 2)})
        text = _join(text, more)
        if added == 0:
            empty_rounds += 1
            if empty_rounds >= 4:
                break
        else:
            empty_rounds = 0
    text = _MARKUP.sub("", text)
    words = count_words(text)
    if words > target_words:
        text = trim_to_words(text, target_words)
        trace.append({"trim": {"from": words, "to": count_words(text)}})
    else:
        text = _end_cleanly(text, target_words)
    words = count_words(text)
    return LengthResult(text=text.strip(), words=words, rounds=rounds, trace=trace, usage=usage,
                        seconds=time.perf_counter() - started, dropped_sentences=guard.dropped)


def distinct_ngram_share(text: str, n: int = 4) -> float:
    """Share of distinct word n-grams (1.0: nothing repeats); the repetition measure."""
    words = [w.lower() for w in _WORD.findall(text) if _HAS_ALNUM.search(w)]
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 1.0
