"""The constraints of a section (instruction.py) checked in its text, and fixed when missed.

``check`` says, for each constraint, whether the section meets it — present, in the right
place (an ending in the last lines, a beginning in the first), in the right form (a
checklist as list items, a question ending with "?", a table as Markdown rows, British
spelling). ``enforce`` fixes what is missing with a short targeted generation (a checklist,
a question, a paragraph on the item due) or a deterministic change (spelling, a heading),
within ``tries`` per constraint, and reports what is still missing. The model writes the
content; the code only asks for it and lays it out, so any model can be checked this way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any

from workers.llm.base import LLMBackend, Usage
from workers.writing.instruction import Constraint
from workers.writing.length import (
    RepetitionGuard,
    count_words,
    sentences,
    stream_round,
    trim_to_words,
)
from workers.writing.vocabulary import keywords, mentions

# Spelling that tells British from American English: (American stem pattern, British).
_OUR = r"\b(?P<s>colo|favo|hono|behavio|neighbo|flavo|labo|humo|harbo|vigo|rumo|savo)" \
       r"r(?P<x>s|ed|ing|ful|ite|ites|hood|able|less)?\b"
_IZE = r"\b(?P<s>organ|real|recogn|apolog|critic|emphas|special|summar|minim|maxim|prior|" \
       r"util|categor|memor|standard|final|modern|visual|character|optim|custom|author|" \
       r"civil|fertil|steril|stabil|mobil|moral|capital|harmon|symbol|sympath)iz" \
       r"(?P<x>e|es|ed|er|ers|ing|ation|ations)\b"
_RE = r"\b(?P<s>cent|theat|lit|fib|somb|spect|meag|calib)er(?P<x>s|ed)?\b"
_ELL = r"\b(?P<s>trave|cance|mode|labe|fue|signa|jewe|counse)l(?P<x>ed|ing|er|ers)\b"
_WORDS_US_GB = {"gray": "grey", "defense": "defence", "offense": "offence", "jewelry":
                "jewellery", "catalog": "catalogue", "aluminum": "aluminium", "cozy": "cosy",
                "plow": "plough", "mold": "mould", "pajamas": "pyjamas", "mom": "mum",
                "analyze": "analyse", "analyzed": "analysed", "paralyze": "paralyse"}
_US_PATTERNS = [
    (re.compile(_OUR, re.IGNORECASE), lambda m: m.group("s") + "ur" + (m.group("x") or "")),
    (re.compile(_IZE, re.IGNORECASE), lambda m: m.group("s") + "is" + m.group("x")),
    (re.compile(_RE, re.IGNORECASE), lambda m: m.group("s") + "re" + (m.group("x") or "")),
    (re.compile(_ELL, re.IGNORECASE), lambda m: m.group("s") + "ll" + m.group("x")),
    (re.compile(r"\b(?:" + "|".join(_WORDS_US_GB) + r")\b", re.IGNORECASE),
     lambda m: _WORDS_US_GB[m.group(0).lower()]),
]
_GB_PATTERNS = [
    (re.compile(_OUR.replace(")r(", ")ur("), re.IGNORECASE),
     lambda m: m.group("s") + "r" + (m.group("x") or "")),
    (re.compile(_IZE.replace(")iz", ")is"), re.IGNORECASE),
     lambda m: m.group("s") + "iz" + m.group("x")),
    (re.compile(_RE.replace(")er(", ")re("), re.IGNORECASE),
     lambda m: m.group("s") + "er" + (m.group("x") or "")),
    (re.compile(_ELL.replace(")l(", ")ll("), re.IGNORECASE),
     lambda m: m.group("s") + "l" + m.group("x")),
    (re.compile(r"\b(?:" + "|".join(_WORDS_US_GB.values()) + r")\b", re.IGNORECASE),
     lambda m: {v: k for k, v in _WORDS_US_GB.items()}[m.group(0).lower()]),
]
_LIST_ITEM = re.compile(r"^\s{0,6}(?:[-*•]|\[ ?\]|☐|\d{1,2}[.)])\s{1,4}\S", re.MULTILINE)
_TABLE_ROW = re.compile(r"^\s{0,4}\|?[^|\n]{1,200}\|[^|\n]{1,200}(?:\|[^|\n]{0,200}){0,8}$",
                        re.MULTILINE)
# Words the program adds around what the model writes (a label before a checklist).
_LABELS = {"checklist": "Checklist", "list": "Key points", "summary": "Summary",
           "takeaway": "Key takeaway", "tip": "Tip", "moral": "Moral", "quote": "Quote",
           "haiku": "Haiku"}
# Words reserved for an addition, taken from the body's share of the section: about what
# the fix adds (a checklist of 3-5 items ~40, one question ~15, a heading ~5, a table ~50).
RESERVE_BY_SHAPE = {"checklist": 40, "list": 40, "question": 15, "heading": 5, "table": 50,
                    "quote": 25}
RESERVE_OTHER = 35
FIX_WORDS = 70
# An item's fix paragraph is cut to this many words (``_addition``); the room a section
# keeps for it while the item is not yet in its text (``needs``).
ITEM_ROOM = FIX_WORDS + 10
# Endings whose addition is written from the section's point alone, not from its text:
# their generation can run beside the section's own (``early_additions``).
TEXT_FREE_SHAPES = ("checklist", "list", "question")


@dataclass
class Check:
    id: str
    kind: str
    label: str
    ok: bool
    detail: str = ""
    fixed: bool = False  # met only after a fix
    tries: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "label": self.label, "ok": self.ok,
                "detail": self.detail, "fixed": self.fixed, "tries": self.tries}


def to_variety(text: str, variety: str) -> str:
    """``text`` in British ("en-GB") or American ("en-US") spelling, for the words listed
    here; the case of the first letter is kept."""
    patterns = _US_PATTERNS if variety == "en-GB" else _GB_PATTERNS

    def keep_case(fix: Callable[[re.Match], str]) -> Callable[[re.Match], str]:
        def apply(m: re.Match) -> str:
            out = fix(m)
            return out[:1].upper() + out[1:] if m.group(0)[:1].isupper() else out.lower()
        return apply

    for pattern, fix in patterns:
        text = pattern.sub(keep_case(fix), text)
    return text


def _wrong_spellings(text: str, variety: str) -> list[str]:
    patterns = _US_PATTERNS if variety == "en-GB" else _GB_PATTERNS
    return [m.group(0) for pattern, _ in patterns for m in pattern.finditer(text)]


def _blocks(text: str) -> list[str]:
    return [b.strip() for b in re.split(r"\n[ \t]{0,8}\n", text.strip()) if b.strip()]


def _head(text: str) -> str:
    """The first block (paragraph, list) of ``text``, with the next when the first is only
    a label ("Checklist:")."""
    blocks = _blocks(text)
    if len(blocks) > 1 and count_words(blocks[0]) <= 6 and "\n" not in blocks[0]:
        return blocks[0] + "\n" + blocks[1]
    return blocks[0] if blocks else ""


def _tail(text: str) -> str:
    """The last block of ``text``, with the one before when that is only a label."""
    blocks = _blocks(text)
    if len(blocks) > 1 and count_words(blocks[-2]) <= 6 and "\n" not in blocks[-2]:
        return blocks[-2] + "\n" + blocks[-1]
    return blocks[-1] if blocks else ""


def _has_shape(piece: str, shape: str, words: list[str], *, at_end: bool) -> bool:
    if shape in ("checklist", "list"):
        return len(_LIST_ITEM.findall(piece)) >= 2
    if shape == "question":
        parts = [s.strip() for s in sentences(piece) if s.strip()]
        return bool(parts) and ("?" in parts[-1] if at_end else "?" in parts[0])
    if shape == "table":
        return len(_TABLE_ROW.findall(piece)) >= 3
    if shape == "heading":
        first = piece.strip().splitlines()[0] if piece.strip() else ""
        return bool(first) and (first.startswith("#") or (count_words(first) <= 12 and
                                                          not first.rstrip().endswith(".")))
    if shape == "quote":
        return bool(re.search(r"[\"“”«»]", piece))
    return mentions(piece, words or keywords(shape))


def check_one(text: str, c: Constraint) -> tuple[bool, str]:
    """Whether ``text`` (one section) meets ``c``, and what is wrong when not."""
    if c.kind == "ending":
        ok = _has_shape(_tail(text), c.value, c.keywords, at_end=True)
        return ok, "" if ok else f"the section does not end with {c.value}"
    if c.kind == "beginning":
        ok = _has_shape(_head(text), c.value, c.keywords, at_end=False)
        return ok, "" if ok else f"the section does not start with {c.value}"
    if c.kind == "table":
        ok = len(_TABLE_ROW.findall(text)) >= 3
        return ok, "" if ok else "no table in the section"
    if c.kind == "item":
        # A name ("Paris") must appear itself; otherwise most of the item's words.
        names = [w for w in re.findall(r"\b[A-Z][a-z]{2,30}\b", c.value)
                 if w.lower() not in ("the", "a", "an")]
        ok = mentions(text, keywords(" ".join(names)), 1.0) if names else \
            mentions(text, c.keywords, 0.5)
        return ok, "" if ok else f"“{c.value}” is not mentioned"
    if c.kind == "language":
        wrong = _wrong_spellings(text, c.value)
        return not wrong, "" if not wrong else "spelling of the other variety: " + \
            ", ".join(sorted(set(w.lower() for w in wrong))[:6])
    return True, ""


def check(text: str, constraints: list[Constraint]) -> list[Check]:
    out = []
    for c in constraints:
        ok, detail = check_one(text, c)
        out.append(Check(c.id, c.kind, c.label, ok, detail))
    return out


def reserve(constraints: list[Constraint]) -> int:
    """Words of a section kept free for additions (an ending, a table)."""
    words = 0
    for c in constraints:
        if c.kind in ("ending", "beginning", "table"):
            words += RESERVE_BY_SHAPE.get(c.value, RESERVE_OTHER)
    return words


def _ask(backend: LLMBackend, prompt: str, words: int, seed: int,
         sampling: dict[str, Any]) -> tuple[str, Usage]:
    """A short generation, streamed and stopped at the first sentence (or list line) end
    once ``words`` are there: a fix decodes only what it needs."""
    text, usage, _ = stream_round(backend, [{"role": "user", "content": prompt}],
                                   RepetitionGuard(max_repeats=2), None,
                                   {**sampling, "seed": seed,
                                    "max_tokens": int(words * 1.6) + 24}, enough=words)
    return text.strip(), usage


def _items(text: str, limit: int = 5) -> list[str]:
    """List items from a model's answer: its list lines, else its sentences."""
    lines = [re.sub(r"^\s{0,6}(?:[-*•]|\[ ?\]|☐|\d{1,2}[.)])\s{0,4}", "", line).strip()
             for line in text.splitlines()]
    items = [line for line in lines if count_words(line) >= 2 and not line.endswith(":")]
    if len(items) < 2:
        items = [s.strip() for s in sentences(text) if count_words(s) >= 3]
    return [" ".join(i.split()[:25]) for i in items[:limit]]


def _table(text: str, header: str) -> str:
    rows = []
    for line in text.splitlines():
        line = re.sub(r"^\s{0,6}(?:[-*•]|\d{1,2}[.)])\s{0,4}", "", line).strip().strip("|")
        cells = [c.strip(" *") for c in re.split(r"\s{0,3}(?:\||:|–|—| - )\s{0,3}", line,
                                                 maxsplit=1)]
        if len(cells) == 2 and all(cells) and count_words(cells[0]) <= 8:
            rows.append(cells)
    if len(rows) < 2:
        return ""
    head = header[:1].upper() + header[1:] if header else "Value"
    lines = [f"| Item | {head} |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows[:8]]
    return "\n".join(lines)


def _addition(backend: LLMBackend, c: Constraint, point: str, text: str, seed: int,
              sampling: dict[str, Any], topic: str = "") -> tuple[str, str, Usage]:
    """(where: "end" | "start" | "body", the addition, usage) for a missed constraint.
    ``topic``: the start of the instruction, so that a section's point ("Equipment") is
    read in its subject (a guide for beekeepers)."""
    usage = Usage()
    shape = c.value
    heading = point
    if topic:
        point = f"{point} (in: {topic})"
    if c.kind in ("ending", "beginning") and shape == "heading":
        return "start", f"## {heading[:80].rstrip('.')}", usage
    if c.kind in ("ending", "beginning") and shape in ("checklist", "list"):
        answer, usage = _ask(backend, f"Write a short checklist for a reader of this section: "
                                      f"{point}. Give 3 to 5 items, one per line, each line "
                                      "starting with '- '.", 35, seed, sampling)
        items = _items(answer)
        if len(items) < 2:
            return "", "", usage
        label = _LABELS[shape]
        block = f"**{label}**\n" + "\n".join(f"- {i}" for i in items)
        return ("end" if c.kind == "ending" else "start"), block, usage
    if c.kind in ("ending", "beginning") and shape == "question":
        answer, usage = _ask(backend, f"Ask the reader one thought-provoking question about: "
                                      f"{point}. Write only the question.", 8, seed, sampling)
        question = next((s.strip() for s in sentences(answer) if s.strip().endswith("?")), "")
        return ("end" if c.kind == "ending" else "start"), question, usage
    if c.kind == "table":
        of = c.label.split(" of ", 1)[1] if " of " in c.label else "details"
        answer, usage = _ask(backend, f"List 3 to 5 {of} for: {point}. One per line, as "
                                      "'name: value'.", 35, seed, sampling)
        header = keywords(of)[0] if keywords(of) else "value"
        return "end", _table(answer, header), usage
    if c.kind in ("ending", "beginning"):
        label = _LABELS.get(shape, shape.capitalize())
        what = c.label.split(" with ", 1)[-1]
        ending = _tail(text)[-300:]
        answer, usage = _ask(backend, f"Write {what} (two sentences) for this part of a text "
                                      f"about: {point}. It ends like this: «{ending}»",
                             45, seed, sampling)
        body = " ".join(s.strip() for s in sentences(answer)[:2] if s.strip())
        return ("end" if c.kind == "ending" else "start"), \
            (f"**{label}:** {body}" if body else ""), usage
    if c.kind == "item":
        answer, usage = _ask(backend, f"Write one paragraph of about 60 words for this "
                                      f"section ({point}) about {c.value}. Name {c.value} "
                                      "in it.", FIX_WORDS, seed, sampling)
        body = trim_to_words(answer.strip(), ITEM_ROOM)
        return "body", body, usage
    return "", "", usage


def needs(constraints: list[Constraint], words: int) -> Callable[[str], tuple[int, str]]:
    """What a section's text still lacks while it is written (``length.write_to_length``'s
    ``needs``): ``ITEM_ROOM`` words for each item it does not mention yet (at most half of
    ``words``), and an angle asking for the first of them. Written in the flow of the
    section, an item costs no fix generation and no body words decoded only to be cut to
    make room for the fix."""
    items = [c for c in constraints if c.kind == "item"]

    def lacking(text: str) -> tuple[int, str]:
        missing = [c for c in items if not check_one(text, c)[0]]
        if not missing:
            return 0, ""
        return (min(ITEM_ROOM * len(missing), words // 2),
                f"Write about {missing[0].value}, and name {missing[0].value} in it.")

    return lacking


def _seeded(sampling: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (sampling or {}).items() if k not in ("max_tokens", "seed")}


def early_additions(backend: LLMBackend, constraints: list[Constraint], point: str,
                    pool: Executor, *, seed: int = 0, sampling: dict[str, Any] | None = None,
                    topic: str = "") -> dict[str, Future]:
    """The first fix of each ending or beginning that is written from the point alone
    (``TEXT_FREE_SHAPES``) and of a table, started on ``pool`` now, to run beside the
    section's own generation (a backend that decodes concurrent requests together makes
    such a short one nearly free); ``enforce(ready=…)`` uses it if the text misses the
    constraint, the same request it would have sent (same prompt and seed)."""
    sampling = _seeded(sampling)
    return {c.id: pool.submit(_addition, backend, c, point, "", seed * 10 + 1, sampling, topic)
            for c in constraints
            if c.kind == "table" or (c.kind in ("ending", "beginning")
                                     and c.value in TEXT_FREE_SHAPES)}


def enforce(backend: LLMBackend, text: str, constraints: list[Constraint], point: str, *,
            words: int, tries: int = 2, seed: int = 0, sampling: dict[str, Any] | None = None,
            topic: str = "", ready: Mapping[str, Future] | None = None
            ) -> tuple[str, list[Check], Usage]:
    """``text`` with the missed constraints fixed (at most ``tries`` generations each),
    kept near ``words`` (the body is cut at a sentence end to make room for additions),
    and the final check of every constraint. ``ready``: first fixes already started
    (``early_additions``); one not needed is still counted in the usage (it was decoded)."""
    sampling = _seeded(sampling)
    usage = Usage()
    body, start, middle, end = text.strip(), [], [], []
    attempts: dict[str, int] = {}
    # Items in the body first, the ending last: an ending must stay at the end.
    order = {"item": 0, "table": 1, "beginning": 2, "ending": 3, "language": 4}
    for c in sorted(constraints, key=lambda c: order.get(c.kind, 5)):
        if c.kind == "language":
            continue  # applied to the whole section below
        current = "\n\n".join([*start, body, *middle, *end])
        for attempt in range(1, tries + 1):
            if check_one(current, c)[0]:
                break
            attempts[c.id] = attempt
            early = (ready or {}).get(c.id) if attempt == 1 else None
            if early is not None:
                where, addition, used = early.result()
            else:
                where, addition, used = _addition(backend, c, point, current,
                                                  seed * 10 + attempt, sampling, topic)
            usage = usage + used
            if not addition or (c.kind == "item" and not check_one(addition, c)[0]):
                continue
            if where == "start":
                start.append(addition)
            elif where == "end":
                end.append(addition)
            else:
                middle.append(addition)
            current = "\n\n".join([*start, body, *middle, *end])
    added = sum(count_words(x) for x in start + middle + end)
    body_words = count_words(body)
    if added and body_words + added > words:
        body = trim_to_words(body, max(words // 2, words - added))
    text = "\n\n".join(x for x in [*start, body, *middle, *end] if x.strip())
    for c in constraints:
        if c.kind == "language":
            attempts[c.id] = 0 if check_one(text, c)[0] else 1
            text = to_variety(text, c.value)
    for c_id, early in (ready or {}).items():
        if c_id not in attempts and early.exception() is None:  # met by the text itself
            usage = usage + early.result()[2]
    results = check(text, constraints)
    for r in results:
        r.tries = attempts.get(r.id, 0)
        r.fixed = r.ok and r.tries > 0
    return text, results, usage
