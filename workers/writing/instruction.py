"""What a writing instruction asks for, read deterministically (no model): the parts to
cover ("equipment, the first inspection and winter"), the units the text is divided into
("one chapter per week of the year", "30 chapters of 500 words"), items due in given units
("the trip to Paris in weeks 24–25", "a workshop every 5 weeks from week 13") and the
checkable constraints ("end each section with a checklist", "separate entries with ###",
"a table of costs", "in British English").

``read_instruction`` returns a ``Spec``; its ``problems`` are contradictions the user must
resolve before anything is planned (30 chapters of 500 words in 1,000 words, week 60 of a
year). Any model can then be checked against the spec: the plan (plan.py, coverage.py) and
each written section (checks.py).

Every pattern here runs on a user's instruction (at most ``MAX_INSTRUCTION_CHARS``), but is
written to stay linear on any text: bounded repeats, no nested quantifiers.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from workers.writing.length import requested_words
from workers.writing.vocabulary import (
    NUMBER,
    NUMBER_WORDS,
    ORDINAL_STEP,
    PER_YEAR,
    PLURALS,
    UNIT,
    UNIT_NOUNS,
    UNITS,
    keywords,
)

MAX_INSTRUCTION_CHARS = 8000
# Below this many words a section cannot hold a chapter, an entry or a part.
MIN_UNIT_WORDS = 40

_WORD_COUNT = re.compile(r"\b(?P<n>\d{1,3}(?:,\d{3}){0,2}|\d{1,7})[\s-]{0,3}words?\b",
                         re.IGNORECASE)

# A length said of each part, not of the whole text: "each entry under 150 words",
# "200 words per chapter".
_PART_WORDS = re.compile(
    rf"\b(?:each|every|per|a)\s{{1,3}}(?:{UNITS}|{UNIT})\b[^.;\n]{{0,40}}?\b\d{{1,6}}(?:,\d{{3}})?"
    rf"[\s-]{{0,3}}words?|\b\d{{1,6}}(?:,\d{{3}})?[\s-]{{0,3}}words?\s{{1,3}}(?:each|per|a|an)\s"
    rf"{{0,3}}(?:{UNITS}|{UNIT})?\b", re.IGNORECASE)
# With no length given and none stated, a text is this long.
DEFAULT_TARGET_WORDS = 1000

# "30 chapters of 500 words", "in 5 parts", "a diary of 12 entries".
_COUNT_UNITS = re.compile(
    rf"\b(?P<n>{NUMBER})\s{{1,3}}(?:short\s|long\s|separate\s|weekly\s|daily\s|monthly\s)?"
    rf"(?P<unit>{UNITS}|{UNIT})\b(?:\s{{1,3}}(?:of|with)\s{{1,3}}(?:about\s|around\s|roughly\s|"
    rf"approximately\s)?(?P<each>\d{{1,3}}(?:,\d{{3}})?|\d{{1,6}})[\s-]{{0,3}}words?)?",
    re.IGNORECASE)
# "a 12-week plan", "a 30-day diary".
_HYPHEN_UNITS = re.compile(rf"\b(?P<n>\d{{1,4}})-(?P<unit>{UNIT})\b", re.IGNORECASE)
# "one chapter per week", "an entry for each month of the year".
_PER_PERIOD = re.compile(
    rf"\b(?:one|a|an|a single)\s{{1,3}}(?:short\s|long\s)?(?P<noun>{UNIT})\s{{1,3}}"
    rf"(?:per|for\s{{1,3}}each|for\s{{1,3}}every|each|every|a)\s{{1,3}}"
    rf"(?P<period>day|week|month|quarter|season)\b"
    rf"(?P<year>\s{{1,3}}(?:of|in|across|through(?:out)?)\s{{1,3}}(?:the|a|one)\s{{1,3}}year)?",
    re.IGNORECASE)
_FOR_PERIODS = re.compile(
    rf"\b(?:for|over|during|across)\s{{1,3}}(?:the\s{{1,3}}(?:next|first)\s{{1,3}})?"
    rf"(?P<n>{NUMBER})\s{{1,3}}(?P<unit>days|weeks|months|quarters|seasons)\b", re.IGNORECASE)
_A_YEAR = re.compile(r"\b(?:of|in|across|through(?:out)?|over)\s{1,3}(?:the|a|one)\s{1,3}year\b"
                     r"|\ba\s{1,3}year[\s-]{1,3}long\b|\byear-long\b", re.IGNORECASE)
_EACH_WORDS = re.compile(
    rf"\b(?:each|every)\s{{1,3}}(?P<unit>{UNIT})\s{{1,3}}(?:of|with|has|having|in|about|around|"
    rf"is|should\s{{1,3}}be)\s{{1,3}}(?:about\s|around\s|roughly\s)?(?P<each>\d{{1,3}}(?:,\d{{3}})?"
    rf"|\d{{1,6}})[\s-]{{0,3}}words?", re.IGNORECASE)

# "in weeks 24–25", "in week 60 of the year", "in chapter 3".
_AT_UNITS = re.compile(
    rf"\b(?:in|during|for|on|at|by)\s{{1,3}}(?:the\s{{1,3}})?(?P<unit>{UNIT}|{UNITS})\s{{0,3}}"
    rf"(?P<a>\d{{1,4}})(?:\s{{0,3}}(?:–|—|-|to|through|and|&)\s{{0,3}}(?:{UNIT}\s{{0,3}}|{UNITS}"
    rf"\s{{0,3}})?(?P<b>\d{{1,4}}))?(?P<year>\s{{1,3}}of\s{{1,3}}(?:the|a)\s{{1,3}}year)?",
    re.IGNORECASE)
# "every 5 weeks from week 13 (until week 40)", "every other chapter", "every week".
_EVERY = re.compile(
    rf"\bevery\s{{1,3}}(?:(?P<k>\d{{1,3}}|other|second|third|fourth|fifth)\s{{1,3}})?"
    rf"(?P<unit>{UNIT}|{UNITS})\b"
    rf"(?:,?\s{{1,3}}(?:from|starting|beginning|after)(?:\s{{1,3}}(?:in|at|from|with))?"
    rf"\s{{1,3}}(?:{UNIT}\s{{1,3}})?(?P<start>\d{{1,4}}))?"
    rf"(?:,?\s{{1,3}}(?:until|till|to|through|up\s{{1,3}}to)\s{{1,3}}(?:{UNIT}\s{{1,3}})?"
    rf"(?P<end>\d{{1,4}}))?", re.IGNORECASE)

# "end each section with a checklist", "finish every chapter with a question".
_EDGE = re.compile(
    rf"\b(?P<verb>end|finish|close|conclude|start|begin|open)s?\s{{1,3}}(?:each|every|all|the)"
    rf"\s{{1,3}}(?:of\s{{1,3}}the\s{{1,3}})?(?:{UNIT}|{UNITS})\s{{1,3}}(?:with|by)\s{{1,3}}"
    rf"(?P<what>[^.;\n]{{2,80}})", re.IGNORECASE)
_EDGE_AFTER = re.compile(
    rf"\b(?:each|every)\s{{1,3}}(?:{UNIT})\s{{1,3}}(?:should|must|has\s{{1,3}}to|needs\s{{1,3}}to)"
    rf"\s{{1,3}}(?P<verb>end|finish|close|conclude|start|begin|open)\s{{1,3}}(?:with|by)"
    rf"\s{{1,3}}(?P<what>[^.;\n]{{2,80}})", re.IGNORECASE)
# "separate entries with ###", "entries separated by ***".
_SEPARATOR = re.compile(
    rf"\bseparat(?:e|ed|ing)\s{{1,3}}(?:(?:the|each|all)\s{{1,3}})?(?:(?:{UNITS}|{UNIT})"
    rf"\s{{1,3}})?(?:with|by)\s{{1,3}}(?:a\s{{1,3}}line\s{{1,3}}of\s{{1,3}})?(?P<q>[\"'“‘`]?)"
    rf"(?P<sep>[#*=~_+\-/|]{{1,10}}|---)", re.IGNORECASE)
# "in British English", "use American spelling".
_VARIETY = re.compile(r"\b(?P<v>British|UK|American|US|U\.S\.)\s{1,3}(?:English|spelling)\b",
                      re.IGNORECASE)
# "a table of costs", "include a table comparing the options".
_TABLE = re.compile(r"\b(?:a|one|with\s{1,3}a)\s{1,3}(?:short\s|small\s|simple\s)?table"
                    r"(?:\s{1,3}(?:of|comparing|with|showing|listing|for)\s{1,3}"
                    r"(?P<of>[^.;,\n]{2,60}))?", re.IGNORECASE)
# "mention X in every chapter", "each entry must mention X".
_EVERY_ITEM = re.compile(
    rf"\b(?:mention|include|name|feature)s?\s{{1,3}}(?P<item>[^.;,\n]{{2,60}}?)\s{{1,3}}"
    rf"in\s{{1,3}}(?:each|every|all)\s{{1,3}}(?:of\s{{1,3}}the\s{{1,3}})?(?:{UNIT}|{UNITS})\b"
    rf"|\b(?:each|every)\s{{1,3}}{UNIT}\s{{1,3}}(?:must|should|has\s{{1,3}}to)\s{{1,3}}"
    rf"(?:mention|include|name|feature)\s{{1,3}}(?P<item2>[^.;,\n]{{2,60}})", re.IGNORECASE)

_CUE = re.compile(r"\b(?:cover(?:ing|s)?|including|include|includes|discuss(?:ing)?|"
                  r"explain(?:ing)?|describe|describing|address(?:ing)?|about|on|topics?|"
                  r"sections?\s{1,3}on|parts?\s{1,3}on|deal\s{1,3}with|focus(?:ing)?\s{1,3}on)"
                  r"\s{1,3}|:\s{0,3}", re.IGNORECASE)
_LIST_LINE = re.compile(r"^\s{0,8}(?:[-*•]|\d{1,3}[.)])\s{1,4}(?P<item>\S[^\n]{0,200})$",
                        re.MULTILINE)
# Possessive: a run without a sentence end is read once, never retried from each position.
_SENTENCE = re.compile(r"[^.!?\n]++(?:[.!?]++|\n|$)")


@dataclass
class Part:
    """Something the text must cover: a topic of an enumeration, a unit, a scheduled item."""
    id: str  # "part:1", "unit:24", "item:2"
    label: str
    kind: str  # "part" | "unit" | "item"
    keywords: list[str] = field(default_factory=list)
    units: list[int] = field(default_factory=list)  # items: the units they are due in


@dataclass
class Constraint:
    """A checkable requirement. ``scope``: "each" (every section), "units" (the sections of
    ``units``), "once" (one section), "document" (the whole text)."""
    id: str
    kind: str  # "ending" | "beginning" | "item" | "table" | "language" | "separator"
    label: str  # what the user asked, in short
    value: str = ""  # the shape ("checklist", "question"), separator, variety "en-GB"
    scope: str = "each"
    units: list[int] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    part: str = ""  # for "item" constraints: the Part id it checks


@dataclass
class Units:
    noun: str  # what a section is called: "week", "chapter"
    count: int | None
    words_each: int | None = None
    source: str = ""  # the words it was read from


@dataclass
class Spec:
    parts: list[Part] = field(default_factory=list)
    items: list[Part] = field(default_factory=list)
    units: Units | None = None
    constraints: list[Constraint] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # contradictions: nothing is planned
    notes: list[str] = field(default_factory=list)
    # The instruction without its constraint sentences (what the plan prompt shows: told to
    # "end each section with a checklist", a small model plans sections about checklists).
    topic: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Spec:
        data = data or {}
        units = data.get("units")
        return cls(parts=[Part(**p) for p in data.get("parts", [])],
                   items=[Part(**p) for p in data.get("items", [])],
                   units=Units(**units) if units else None,
                   constraints=[Constraint(**c) for c in data.get("constraints", [])],
                   problems=list(data.get("problems", [])), notes=list(data.get("notes", [])),
                   topic=data.get("topic", ""))

    @property
    def separator(self) -> str | None:
        return next((c.value for c in self.constraints if c.kind == "separator"), None)

    @property
    def variety(self) -> str | None:
        return next((c.value for c in self.constraints if c.kind == "language"), None)

    def summary(self) -> list[str]:
        """What was read, one line each, for the page and the plan prompt."""
        out = []
        if self.units:
            u = self.units
            out.append(f"{u.count or 'several'} {u.noun}s"
                       + (f" of {u.words_each:,} words" if u.words_each else ""))
        out += [f"cover: {p.label}" for p in self.parts]
        out += [f"{p.label} ({_unit_span(self.units, p.units)})" for p in self.items]
        out += [c.label for c in self.constraints if c.kind != "item"]
        return out



def _number(raw: str) -> int:
    raw = raw.lower().replace(",", "").strip()
    return int(raw) if raw.isdigit() else NUMBER_WORDS.get(raw, 0)


def _singular(unit: str) -> str:
    unit = unit.lower()
    return next((u for u, plural in PLURALS.items() if unit == plural), unit)


def _unit_span(units: Units | None, numbers: list[int]) -> str:
    noun = units.noun if units else "section"
    if not numbers:
        return f"every {noun}"
    if len(numbers) == 1:
        return f"{noun} {numbers[0]}"
    if numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"{noun}s {numbers[0]}–{numbers[-1]}"
    shown = ", ".join(str(n) for n in numbers[:8])
    return f"{noun}s {shown}{', …' if len(numbers) > 8 else ''}"


def _clean_item(text: str) -> str:
    text = re.sub(r"\s{2,}", " ", text).strip(" \t,;:-–—\"'“”.!?")
    text = re.sub(r"^(?:(?:and|or|with|plus|then|also|include|including|have|has|there is|"
                  r"there are|there's|put|place|schedule|add|mention|write about)\s{1,3})+",
                  "", text, flags=re.IGNORECASE)
    text = re.sub(r"\s{1,3}(?:appears?|arrives?|happens?|takes\s{1,3}place|comes?|occurs?|is|"
                  r"are|starts?|begins?|ends?)$", "", text.strip(" \t,;:-–—"),
                  flags=re.IGNORECASE)
    return text.strip(" \t,;:-–—")


def _clauses(text: str) -> list[str]:
    return [c.strip() for c in re.split(r"[,;\n]|\.\s|\band\s(?=(?:a|an|the)\s)", text)
            if c.strip()]


# -- Units and schedules -------------------------------------------------------------------

def _read_units(text: str, target_words: int, problems: list[str]) -> Units | None:
    units: Units | None = None
    match = _PER_PERIOD.search(text)
    if match:
        period = match.group("period").lower()
        count = PER_YEAR[period] if match.group("year") else None
        span = _FOR_PERIODS.search(text)
        if count is None and span and _singular(span.group("unit")) == period:
            count = _number(span.group("n"))
        units = Units(period, count, None, match.group(0))
    if units is None:
        found = _HYPHEN_UNITS.search(text)
        if found and int(found.group("n")) >= 2:
            units = Units(_singular(found.group("unit")), int(found.group("n")), None,
                          found.group(0))
    if units is None:
        for found in _COUNT_UNITS.finditer(text):
            before = text[max(0, found.start() - 12):found.start()].lower().split()
            if before and before[-1] in ("every", "each", "first", "last", "next", "from",
                                         "after", "within", "week", "day", "chapter"):
                continue  # "every 4 weeks", "the first 3 chapters": no count of units
            noun = _singular(found.group("unit"))
            count = _number(found.group("n"))
            if count >= 2 or found.group("each"):
                each = _number(found.group("each")) if found.group("each") else None
                units = Units(noun, count, each, found.group(0))
                break
    if units is None:
        span = _FOR_PERIODS.search(text)
        if span and re.search(r"\b(?:diary|journal|log|plan|programme|program|schedule|"
                              r"calendar|entries|entry)\b", text, re.IGNORECASE):
            units = Units(_singular(span.group("unit")), _number(span.group("n")), None,
                          span.group(0))
    if units is not None and units.words_each is None:
        each = _EACH_WORDS.search(text)
        if each:
            units.words_each = _number(each.group("each"))
    if units is not None and units.count and units.count > 400:
        problems.append(f"{units.count:,} {units.noun}s are more than one text can hold "
                        "here (at most 400 sections).")
    if units is not None and units.count and target_words:
        if units.words_each:
            needed = units.count * units.words_each
            if abs(needed - target_words) > 0.25 * target_words:
                problems.append(
                    f"The instruction asks for {units.count:,} {units.noun}s of "
                    f"{units.words_each:,} words ({needed:,} words), but the target length is "
                    f"{target_words:,} words. Change the target to {needed:,} or ask for "
                    f"fewer or shorter {units.noun}s.")
        elif target_words / units.count < MIN_UNIT_WORDS:
            problems.append(
                f"{units.count:,} {units.noun}s in {target_words:,} words leave "
                f"{target_words // units.count} words each; a {units.noun} needs at least "
                f"{MIN_UNIT_WORDS}. Raise the target to {units.count * MIN_UNIT_WORDS:,} words "
                f"or more, or ask for fewer {units.noun}s.")
    return units


def _read_schedules(text: str, units: Units | None, problems: list[str]
                    ) -> tuple[list[Part], Units | None]:
    """Items due in given units. Infers the units from the schedule when the instruction
    did not state them ("the race in week 16" → weeks, at least 16)."""
    found: list[tuple[str, list[int] | None, tuple[str, int | None, int | None], str]] = []
    for clause in _clauses(text):
        if _EDGE.search(clause) or _SEPARATOR.search(clause) or _PER_PERIOD.search(clause) \
                or _EVERY_ITEM.search(clause):
            continue
        every = _EVERY.search(clause)
        if every:
            noun = _singular(every.group("unit"))
            raw_k = (every.group("k") or "1").lower()
            k = ORDINAL_STEP.get(raw_k) or _number(raw_k) or 1
            start = int(every.group("start")) if every.group("start") else k
            end = int(every.group("end")) if every.group("end") else None
            item = _clean_item(clause[:every.start()] + " " + clause[every.end():])
            item = re.sub(r"\s{1,3}(?:in|on|at|during)$", "", item, flags=re.IGNORECASE)
            if item and keywords(item):
                found.append((item, None, (noun, k, start if start else None), str(end or "")))
            continue
        prev = 0
        for at in _AT_UNITS.finditer(clause):
            # "plant beans in month 3 and harvest them in month 8": each item is the text
            # before its unit mention (after the previous one); the first may follow it.
            noun = _singular(at.group("unit"))
            a = int(at.group("a"))
            b = int(at.group("b")) if at.group("b") else a
            if b < a:
                a, b = b, a
            item = _clean_item(clause[prev:at.start()])
            if not keywords(item) and prev == 0:
                item = _clean_item(re.split(r"[,;]", clause[at.end():])[0])
            prev = at.end()
            if at.group("year") and b > PER_YEAR.get(noun, 10**6):
                problems.append(f"{noun.capitalize()} {b} does not exist: a year has "
                                f"{PER_YEAR[noun]} {noun}s.")
                continue
            if item and keywords(item):
                found.append((item, list(range(a, min(b, a + 400) + 1)), (noun, None, None), ""))
    if not found:
        return [], units
    nouns = {f[2][0] for f in found}
    # Units are inferred only from a schedule of two items or more: a story where "you
    # become someone else every other week" is no diary of two weeks.
    schedule = len(found) >= 2
    if units is None and schedule and len(nouns) == 1 and next(iter(nouns)) in UNIT_NOUNS:
        noun = next(iter(nouns))
        mentioned = [n for f in found if f[1] for n in f[1]] + \
                    [f[2][2] or 0 for f in found if f[1] is None]
        count = PER_YEAR[noun] if _A_YEAR.search(text) and noun in PER_YEAR else \
            (max(mentioned) if mentioned else None)
        units = Units(noun, count, None, "the schedule")
    items: list[Part] = []
    for label, numbers, (noun, k, start), end in found:
        if units is None or noun != units.noun:
            continue
        if numbers is None:  # every k units from start
            last = int(end) if end else (units.count or 0)
            if not last:
                problems.append(f"“{label}” is due every {k} {noun}s, but the instruction "
                                f"does not say how many {noun}s there are.")
                continue
            numbers = list(range(start or k, last + 1, k))
        if units.count and any(n > units.count for n in numbers):
            bad = [n for n in numbers if n > units.count]
            bound = "a year has" if units.count == PER_YEAR.get(noun) and _A_YEAR.search(text) \
                else "the text has"
            problems.append(f"“{label}” is due in {noun} {bad[0]}, but {bound} "
                            f"{units.count} {noun}s.")
            continue
        if numbers and min(numbers) < 1:
            problems.append(f"“{label}”: there is no {noun} 0.")
            continue
        items.append(Part(f"item:{len(items) + 1}", label, "item", keywords(label), numbers))
    return items, units


# -- Parts ---------------------------------------------------------------------------------

def _split_enumeration(text: str) -> list[str]:
    text = re.sub(r"\s{1,3}(?:etc\.?|and so on)\s{0,3}$", "", text.strip(), flags=re.IGNORECASE)
    pieces = [p for p in re.split(r"\s{0,3}[,;]\s{0,3}(?:and\s{1,3}|or\s{1,3})?|\s{1,3}and\s{1,3}"
                                  r"|\s{1,3}as\s{1,3}well\s{1,3}as\s{1,3}", text) if p.strip()]
    return [_clean_item(p) for p in pieces]


# A list item that tells how to write ("Ensure the story is…", "Feel free to…", "The essay
# should…") is a requirement of style, not a part to cover.
_HOW = re.compile(r"^(?:ensure|feel|use|write|make|avoid|provide|keep|maintain|try|do|don't|"
                  r"be|please|remember|note|start|begin|end|conclude|address|incorporate|"
                  r"follow|adhere|format|organi[sz]e|structure|limit|aim)\b"
                  r"|\b(?:should|must|shall|need\s{1,3}to|make\s{1,3}sure|no\s{1,3}(?:shorter|"
                  r"longer|more|less|fewer)|at\s{1,3}(?:least|most))\b", re.IGNORECASE)


def _topics(items: list[str], most_words: int) -> list[str]:
    return [i for i in items if i and len(i.split()) <= most_words and keywords(i)
            and not _HOW.search(i)]


def _read_parts(text: str) -> list[str]:
    lines = [m.group("item").strip().rstrip(".:;") for m in _LIST_LINE.finditer(text)]
    if len(lines) >= 2:
        topics = _topics(lines, 10)
        # A list of requirements ("1. The story should…"), not of parts: no parts from it.
        return topics if len(topics) == len(lines) else []
    best: list[str] = []
    for sentence in _SENTENCE.findall(text):
        sentence = sentence.strip().rstrip(".!?")
        if not sentence:
            continue
        for cue in _CUE.finditer(sentence):
            rest = sentence[cue.end():]
            items = _split_enumeration(rest)
            short = _topics(items, 10)
            # The latest cue that starts a list wins: it is the one nearest the list ("a
            # report on trees covering A, B and C").
            if len(items) >= 2 and len(short) == len(items):
                # "about A and B" only counts with a list mark: two or more commas, a colon
                # or a cue that lists ("cover", "including").
                listy = rest.count(",") >= 1 or cue.group(0).strip().startswith(":") or \
                    re.match(r"(?:cover|includ|discuss|address|topics|sections|parts|deal|"
                             r"explain|describ)", cue.group(0).strip(), re.IGNORECASE)
                if listy:
                    best = items
        if not best:  # a bare "A, B and C" with three or more short items
            tail = re.split(r"\b(?:write|create|compose|draft|produce)\b", sentence,
                            flags=re.IGNORECASE)[-1]
            items = _split_enumeration(tail)
            if len(items) >= 3 and all(i and len(i.split()) <= 8 for i in items) and \
                    tail.count(",") >= 2:
                best = items
    return best[:20]


# -- Constraints ---------------------------------------------------------------------------

def _shape(what: str) -> str:
    """The checkable shape of an ending or a beginning: "a short checklist" → "checklist"."""
    what = what.strip().lower()
    for shape in ("checklist", "check list", "to-do list", "bullet", "list", "question",
                  "summary", "table", "quote", "quotation", "heading", "title", "haiku",
                  "moral", "takeaway", "tip"):
        at = what.find(shape)
        if at >= 0 and (at == 0 or not what[at - 1].isalnum()):
            return {"check list": "checklist", "to-do list": "checklist", "bullet": "list",
                    "quotation": "quote", "title": "heading"}.get(shape, shape)
    words = keywords(what)
    return words[0] if words else what[:30]


def _read_constraints(text: str, units: Units | None, items: list[Part]) -> list[Constraint]:
    out: list[Constraint] = []
    noun = units.noun if units else "section"
    for pattern in (_EDGE, _EDGE_AFTER):
        for match in pattern.finditer(text):
            verb = match.group("verb").lower()
            kind = "ending" if verb in ("end", "finish", "close", "conclude") else "beginning"
            if any(c.kind == kind for c in out):
                continue
            what = re.split(r"\s{1,3}(?:and|but|while)\s{1,3}(?=(?:separate|use|write|in|"
                            r"include|start|begin|end)\b)", match.group("what"))[0].strip()
            what = re.split(r",\s", what)[0].strip()
            shape = _shape(what)
            label = re.sub(r"\s+", " ", match.group(0)[:match.start("what") - match.start()]
                           + what).strip()
            out.append(Constraint(kind, kind, label, shape, "each", [], keywords(what)))
    sep = _SEPARATOR.search(text)
    if sep:
        out.append(Constraint("separator", "separator", f"separate {noun}s with {sep.group('sep')}",
                              sep.group("sep"), "document"))
    variety = _VARIETY.search(text)
    if variety:
        british = variety.group("v").upper() in ("BRITISH", "UK")
        out.append(Constraint("language", "language",
                              "British English" if british else "American English",
                              "en-GB" if british else "en-US", "each"))
    table = _TABLE.search(text)
    if table and not any(c.value == "table" for c in out):
        of = _clean_item(table.group("of") or "")
        out.append(Constraint("table", "table", f"a table{' of ' + of if of else ''}", "table",
                              "once", [], keywords(of)))
    every = _EVERY_ITEM.search(text)
    if every:
        item = _clean_item(every.group("item") or every.group("item2") or "")
        if keywords(item):
            out.append(Constraint("item:each", "item", f"mention {item} in each {noun}", item,
                                  "each", [], keywords(item)))
    for item in items:
        out.append(Constraint(item.id, "item", f"{item.label} in {_unit_span(units, item.units)}",
                              item.label, "units", list(item.units), item.keywords, item.id))
    return out


def _without(text: str, patterns: list[re.Pattern]) -> str:
    for pattern in patterns:
        text = pattern.sub(" ", text)
    return text


def read_instruction(instruction: str, target_words: int = 0) -> Spec:
    """The Spec of ``instruction`` (see the module docstring). ``target_words`` is checked
    against the units it asks for."""
    text = (instruction or "").strip()
    spec = Spec()
    if len(text) > MAX_INSTRUCTION_CHARS:
        spec.problems.append(too_long_message(len(text)))
        return spec
    units = _read_units(text, target_words, spec.problems)
    items, units = _read_schedules(text, units, spec.problems)
    if units is not None and units.count and target_words and units.source == "the schedule" \
            and target_words / units.count < MIN_UNIT_WORDS:
        spec.problems.append(
            f"The schedule runs to {units.noun} {units.count}: {target_words:,} words leave "
            f"{target_words // units.count} words a {units.noun}; raise the target to "
            f"{units.count * MIN_UNIT_WORDS:,} words or more.")
    spec.units, spec.items = units, items
    spec.constraints = _read_constraints(text, units, items)
    # Parts come from what is left once the constraints, schedules and length are read.
    rest = _without(text, [_EDGE, _EDGE_AFTER, _SEPARATOR, _VARIETY, _TABLE, _EVERY_ITEM,
                           _WORD_COUNT, _PER_PERIOD, _COUNT_UNITS])
    rest = _SENTENCE.sub(lambda m: " " if _EVERY.search(m.group(0)) or
                         _AT_UNITS.search(m.group(0)) else m.group(0), rest)
    spec.topic = _topic(text)
    labels = _read_parts(rest)
    item_keys = {tuple(i.keywords) for i in items}
    parts = []
    for label in labels:
        words = keywords(label)
        if words and tuple(words) not in item_keys and all(p.keywords != words for p in parts):
            parts.append(Part(f"part:{len(parts) + 1}", label, "part", words))
    spec.parts = parts
    if units and units.count and len(parts) > units.count:
        spec.notes.append(f"{len(parts)} parts to cover in {units.count} {units.noun}s: some "
                          f"{units.noun}s cover more than one.")
    return spec


def stated_length(instruction: str) -> int | None:
    """The whole text's length an instruction states — "a 400-word essay", "in about 3,000
    words", "30 chapters of 500 words" (30 × 500) — or None. A length said of each part
    ("each entry under 150 words") is not the whole text's."""
    text = (instruction or "")[:MAX_INSTRUCTION_CHARS]
    units = _read_units(text, 0, [])
    part = _PART_WORDS.search(text)
    each = units.words_each if units is not None and units.words_each else \
        requested_words(part.group(0)) if part else None
    if units is not None and units.count and each:
        return units.count * each
    return requested_words(_without(text, [_PART_WORDS]))


def target_words_for(instruction: str, given: int | None) -> int:
    """The target length: the one given, else the instruction's, else the default."""
    return given or stated_length(instruction) or DEFAULT_TARGET_WORDS


def _topic(text: str) -> str:
    """``text`` without the sentences that only state constraints."""
    kept = []
    for sentence in re.split(r"(?<=[.!?])\s{1,4}", text):
        if any(p.search(sentence) for p in (_EDGE, _EDGE_AFTER, _SEPARATOR, _VARIETY)) and \
                count_content(sentence) <= 12:
            continue
        kept.append(sentence)
    return " ".join(kept).strip() or text


def count_content(text: str) -> int:
    return len(keywords(text))


def too_long_message(chars: int) -> str:
    return (f"The instruction is {chars:,} characters long; the limit is "
            f"{MAX_INSTRUCTION_CHARS:,}. Keep the instruction to what to write, and add "
            "background material as a reference document.")
