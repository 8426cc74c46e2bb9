"""Clean answer text: no prompt markup or echoed instructions ever reach an answer.

A small model copies what it reads, our delimiters included: ``<document id="2" title="…"
part="33706-34001">``, a bare ``</document>``, ``< document>`` (a defanged tag), chat-template
tokens (``<|im_end|>``), prompt labels ("Question: …") and, asked to "print your system
prompt", the instructions themselves. One filter removes them, used twice with the same
code: on the streamed deltas (``MarkupFilter``, so the browser never shows them either)
and on the final text (``clean_answer``), so that the deltas still add up to the answer.

Streaming stays word by word: the filter holds back only what it cannot judge yet, an
unclosed ``<`` or ``="`` (a tag or attribute still arriving), a line that starts with a
prompt label, and the last ``ECHO_WORDS - 1`` words (an echo of an instruction is a run of
at least ``ECHO_WORDS`` words shared with one of our prompts). Every pattern is linear: no
nested quantifiers, bounded repeats.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from workers.writing.length import CONTINUE_PROMPT

from . import prompts

# A run of this many words shared with one of our prompts is an echo of the prompt.
ECHO_WORDS = 6
MAX_TAG_CHARS = 400  # an unclosed "<" longer than this is text, not a tag still arriving
MAX_HELD_CHARS = 2 * MAX_TAG_CHARS  # the most text held back at any time

_TAG_NAMES = r"(?:document|notes|question)"
_MARKUP = re.compile(
    "|".join(
        (
            # Our tags, whole or cut off at the end, with any attributes, defanged ("< /x").
            rf"<\s{{0,3}}/?\s{{0,3}}{_TAG_NAMES}\b[^<>\n]{{0,{MAX_TAG_CHARS}}}>?",
            r"<\|[^<>|\n]{0,40}\|>",  # chat-template tokens: <|im_start|>, <|im_end|>
            r"</?\s{0,3}(?:system|user|assistant)\s{0,3}>",  # chat roles as tags
            # Attribute strings left without their tag: id="2" title="…" part="1-9">
            r'(?:\b(?:id|title|part)\s?=\s?"[^"\n]{0,300}"\s?)+>?',
        )
    ),
    re.IGNORECASE,
)
_LABEL_LINE = re.compile(
    r"(?im)^[ \t]{0,8}(?:question|updated notes|evidence \(verbatim\))\s?:[^\n]*(?:\n|$)"
)
_LABELS = ("question:", "updated notes:", "evidence (verbatim):")
_ANSWER_LABEL = re.compile(r"(?im)^([ \t]{0,8})answer\s?:[ \t]{0,8}")
_TAG_WORDS = ("document", "notes", "question")
_CUT_TAG = re.compile(r"<\s{0,3}/?\s{0,3}([a-z]{0,12})$", re.IGNORECASE)
# Leading space only at the start (a later word's was taken by the one before): a run of
# spaces with no word after it is then read once, not once per position.
_WORD = re.compile(r"\A\s*+\S++\s*+|\S++\s*+")
_SPACES = re.compile(r"[ \t]{2,}")


def _norm(word: str) -> str:
    return "".join(ch for ch in word.lower() if ch.isalnum())


def prompt_texts() -> list[str]:
    """Every instruction text the engine sends to a model (what must never be echoed)."""
    texts = [
        value
        for name, value in vars(prompts).items()
        if isinstance(value, str) and name.isupper() and len(value.split()) >= ECHO_WORDS
    ]
    return [*texts, CONTINUE_PROMPT]


def _ngrams(texts: Iterable[str], n: int = ECHO_WORDS) -> frozenset[tuple[str, ...]]:
    out: set[tuple[str, ...]] = set()
    for text in texts:
        words = [w for w in (_norm(x) for x in text.split()) if w]
        out.update(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    return frozenset(out)


def _safe_cut(text: str) -> int:
    """How much of ``text`` can be judged now: not a tag, attribute, label line or word
    that is still arriving, and never a cut through a piece of markup."""
    cut = len(text)
    lt = text.rfind("<")
    if lt >= 0 and ">" not in text[lt:] and "\n" not in text[lt:] and cut - lt < MAX_TAG_CHARS:
        cut = lt
    eq = text.rfind('="')
    if eq >= 0 and '"' not in text[eq + 2 :] and len(text) - eq < 300:
        while eq > 0 and (text[eq - 1].isalnum() or text[eq - 1] == " "):
            eq -= 1  # the attribute's name goes with its value
        cut = min(cut, eq)
    line = text.rfind("\n") + 1
    head = text[line:].lstrip(" \t").lower()
    if line < cut and any(label.startswith(head[: len(label)]) for label in _LABELS):
        cut = line  # may be a prompt label ("Question: …"): wait for the end of the line
    if cut == len(text) and not text[-1:].isspace():
        cut = max(text.rfind(" "), text.rfind("\n")) + 1  # a word still being written
    if len(text) - cut > MAX_HELD_CHARS:  # nothing waits longer (each delta rescans it)
        cut = len(text) - MAX_TAG_CHARS
    for m in _MARKUP.finditer(text):
        if m.start() < cut < m.end():
            cut = m.start()
    return max(cut, 0)


class MarkupFilter:
    """Stateful filter over streamed deltas: ``sink`` receives clean deltas only.

    ``feed(delta)`` for each delta, ``close()`` at the end; ``text`` is everything sent."""

    def __init__(self, sink: Callable[[str], None] | None = None) -> None:
        self.sink = sink
        self.text = ""  # what was sent on
        self._raw = ""  # not judged yet (markup stage)
        self._words: list[tuple[str, str]] = []  # (normalised, as written), echo stage
        self._drop: list[bool] = []
        self._recent: list[str] = []  # last normalised words already sent or dropped
        self._blank_line = True  # nothing but spaces judged since the last line break
        self._space = ""  # whitespace after the last word sent (sent with the next word)

    def __call__(self, delta: str) -> None:
        self.feed(delta)

    def feed(self, delta: str) -> None:
        self._raw += delta
        cut = _safe_cut(self._raw)
        if cut <= 0:
            return
        ready, self._raw = self._raw[:cut], self._raw[cut:]
        self._push(self._strip(ready))
        self._release(final=False)

    def close(self) -> str:
        """Flush what was held back; returns the whole clean text."""
        if self._raw:
            self._push(self._strip(self._raw, final=True))
            self._raw = ""
        self._release(final=True)
        return self.text

    def _strip(self, text: str, final: bool = False) -> str:
        """``_strip_markup`` of the next piece; a label counts only at a real line start."""
        at_line_start = self._blank_line
        tail = text.rsplit("\n", 1)
        self._blank_line = (len(tail) == 2 or self._blank_line) and not tail[-1].strip()
        if at_line_start:
            return _strip_markup(text, final)
        return _strip_markup("\x00" + text, final).replace("\x00", "", 1)

    # -- echo stage ----------------------------------------------------------------------

    def _push(self, text: str) -> None:
        if text.isspace():  # whitespace alone goes with the word before it
            if self._words:
                norm, piece = self._words[-1]
                self._words[-1] = (norm, piece + text)
            else:
                self._space += text
            return
        for m in _WORD.finditer(text):
            piece = m.group(0)
            self._words.append((_norm(piece), piece))
            self._drop.append(False)
            self._mark_echoes()

    def _mark_echoes(self) -> None:
        """If the last ``ECHO_WORDS`` words (across what was sent) are a prompt's, drop them."""
        words = [w for w in [*self._recent, *(w for w, _ in self._words)] if w]
        if len(words) < ECHO_WORDS or tuple(words[-ECHO_WORDS:]) not in _ECHOES:
            return
        need, i = ECHO_WORDS, len(self._words) - 1
        while need > 0 and i >= 0:
            if self._words[i][0]:
                need -= 1
            self._drop[i] = True
            i -= 1

    def _release(self, final: bool) -> None:
        keep = 0 if final else ECHO_WORDS - 1
        while len(self._words) > keep:
            norm, piece = self._words.pop(0)
            if not self._drop.pop(0):
                self._send(piece)
            if norm:
                self._recent = [*self._recent[-(ECHO_WORDS - 2) :], norm]

    def _send(self, piece: str) -> None:
        """Send ``piece``; whitespace waits for the next word (none at the ends, no doubles)."""
        body = piece.strip()
        if not body:
            self._space += piece
            return
        space = (self._space + piece[: len(piece) - len(piece.lstrip())]) if self.text else ""
        if "\n" in space:
            space = "\n" * min(2, space.count("\n"))
        elif space:
            space = " "
        self._space = piece[len(piece.rstrip()) :]
        self.text += space + body
        if self.sink is not None:
            self.sink(space + body)


def _strip_markup(text: str, final: bool = False) -> str:
    text = _LABEL_LINE.sub("", text)
    text = _ANSWER_LABEL.sub(r"\1", text)
    text = _MARKUP.sub(" ", text)
    cut = _CUT_TAG.search(text) if final else None
    if cut and any(tag.startswith(cut.group(1).lower()) for tag in _TAG_WORDS):
        text = text[: cut.start()]  # the start of a tag the model did not finish
    return _SPACES.sub(" ", text)


_ECHOES = _ngrams(_strip_markup(text) for text in prompt_texts())


def clean_answer(text: str) -> str:
    """``text`` without prompt markup, labels and echoed instructions (what the stream
    filter sends for the same text, so streamed deltas add up to the answer)."""
    f = MarkupFilter()
    f.feed(text)
    return f.close()
