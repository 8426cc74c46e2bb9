"""AgentWrite's plan: the writing task split into numbered sections with word counts.

The model is asked for one line per section, "Paragraph N – Main point: … – Word count:
…" (JSON where the backend enforces a schema). Its answer is parsed leniently, repaired
(counts rescaled to the target, each kept in 200–1,000 words by splitting or merging),
re-asked once when nothing usable came back, and otherwise replaced by a deterministic
split of the instruction. ``Plan.source`` says which of these happened.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from workers.llm.base import LLMBackend, Usage
from workers.writing.coverage import (
    MIN_PART_WORDS,
    annotate,
    cover_parts,
    coverage,
    uncovered,
    unit_plan,
)
from workers.writing.instruction import (
    MAX_INSTRUCTION_CHARS,
    Spec,
    read_instruction,
    too_long_message,
)
from workers.writing.length import RepetitionGuard, count_words, sentences
from workers.writing.sections import (  # noqa: F401 - MAX_SECTION: part of this module's API
    DEFAULT_SECTION,
    MAX_SECTION,
    MIN_SECTION,
    PlanSection,
    distribute,
)

DEFAULT_MAX_WORDS = 50_000
ONE_SECTION_TOPICS = 6  # source topics named in the point of a one-section plan


class PlanError(ValueError):
    """The request cannot be planned (bad target, empty instruction) or the model's plan
    was unusable and no fallback was allowed. The message is shown to the user."""


@dataclass
class Plan:
    sections: list[PlanSection]
    source: str  # "model" | "repaired" | "fallback" | "structure" (one per unit asked)
    # | "sources" (from the reference documents' topics)
    note: str = ""
    trace: list[dict[str, Any]] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    requirements: Spec = field(default_factory=Spec)  # what the instruction asks for

    @property
    def total(self) -> int:
        return sum(s.words for s in self.sections)

    def to_dict(self) -> dict[str, Any]:
        return {"sections": [asdict(s) for s in self.sections], "source": self.source,
                "note": self.note, "trace": self.trace, "total": self.total,
                "requirements": self.requirements.to_dict(),
                "coverage": coverage(self.requirements, self.sections)}

    def outline(self) -> str:
        return "\n".join(f"{s.index}. {s.point} ({s.words} words)" for s in self.sections)


def check_request(instruction: str, target_words: int, max_words: int = DEFAULT_MAX_WORDS) -> str:
    """The instruction, stripped; raises PlanError with a message for the user (see
    ``check_instruction``: the API's validation and the forms call this)."""
    return check_instruction(instruction, target_words, max_words)[0]


def check_instruction(instruction: str, target_words: int,
                      max_words: int = DEFAULT_MAX_WORDS) -> tuple[str, Spec]:
    """The instruction (stripped) and what it asks for; raises PlanError with a message for
    the user on a bad request: no instruction, a bad target, an instruction over
    MAX_INSTRUCTION_CHARS, or any contradiction (30 chapters of 500 words in 1,000 words,
    week 60 of a year): nothing is planned or written until it is changed."""
    instruction = (instruction or "").strip()
    if not instruction:
        raise PlanError("Write an instruction first: what should the text be about?")
    if not isinstance(target_words, int) or isinstance(target_words, bool):
        raise PlanError("The target length must be a whole number of words.")
    if target_words <= 0:
        raise PlanError("The target length must be a positive number of words.")
    if target_words > max_words:
        raise PlanError(f"The target length is above the limit of {max_words:,} words.")
    if len(instruction) > MAX_INSTRUCTION_CHARS:
        raise PlanError(too_long_message(len(instruction)))
    spec = read_instruction(instruction, target_words)
    if spec.problems:
        raise PlanError(" ".join(spec.problems))
    return instruction, spec


# -- Prompt --------------------------------------------------------------------------------

PLAN_PROMPT = """Break the following writing task into sections. Each section is one paragraph \
or a few paragraphs of the final text.

Writing task: {instruction}
Total length: {target} words, in about {n} sections.

Answer with one line per section and nothing else, in exactly this format:
Paragraph 1 - Main point: [what this section says, in one sentence] - Word count: [number] words
Paragraph 2 - Main point: [...] - Word count: [...]

Each section has 200 to 1000 words; the word counts add up to {target}; together the \
sections cover the whole task.{parts}"""

REASK_PROMPT = """List the {n} sections of this text, one line each, like the example.

Task: {instruction}{parts}

Example:
Paragraph 1 - Main point: Introduce the topic and why it matters - Word count: 400 words
Paragraph 2 - Main point: Explain the first key aspect with examples - Word count: 600 words

Now the {n} lines for the task (counts adding up to {target} words):"""

PLAN_SCHEMA = {
    "type": "object",
    "properties": {"sections": {"type": "array", "items": {
        "type": "object",
        "properties": {"point": {"type": "string"}, "words": {"type": "integer"}},
        "required": ["point", "words"]}}},
    "required": ["sections"],
}


def section_count(target_words: int) -> int:
    """How many sections a plan of ``target_words`` should have (~500 words each)."""
    return max(1, round(target_words / DEFAULT_SECTION))


# -- Parsing -------------------------------------------------------------------------------

_LINE = re.compile(
    r"^[#*>\-\s]*+(?:\*\*)?(?:paragraph|section|part|step|chapter)?\s*+(?P<n>\d++)\s*"
    r"(?:\*\*)?\s*[.:)\-–—]*\s*(?:\*\*)?\s*"
    # The point grows by a character, a whole run of separators or a whole number (it never
    # ends inside one, where the count could not start first): each run is read once.
    r"(?:[-–—:]\s*)?(?:main\s*points?\s*[:：]?\s*)?"
    r"(?P<point>(?:[^\s\-–—,;|(\d]|(?:[^\S\n]|[\-–—,;|(])++|\d++(?:,++\d++)*+)*?)"
    r"(?:[\s\-–—,;|(]*+(?:word\s*count|words?|length)\s*+[:：]?\s*+"
    r"(?:of\s*+|about\s*+|approx\.?\s*+|~)?(?P<count>\d[\d,]*+)\s*+(?:words?)?\)?\.?\s*+"
    r"|[\s\-–—,;|(]*+(?P<count2>\d[\d,]*+)\s*+words?\)?\.?\s*+)?$",
    re.IGNORECASE,
)
# Possessive repeats, a number read from the start of its run: model output with long runs
# of spaces, marks or digits is read in linear time (the regex audit, issue 16).
_HEADER = re.compile(r"^[#*\s]*+(?:\d++[.)]\s*+)?(?:paragraph|section|part|step|chapter)\s*+"
                     r"\d++\s*+[:.)\-–—]?\s*+(?:\*\*)?\s*+$", re.IGNORECASE)
_COUNT = re.compile(r"(?<![\d,]),*+(\d[\d,]*+)\s*+words?\b", re.IGNORECASE)
_LABEL = re.compile(r"^(?:paragraph|section|part|step|chapter)\s*\d*$", re.IGNORECASE)
_PLACEHOLDER = re.compile(
    r"^\[?(?:\.\.\.|…|describe the main point.*|what this section says.*)\]?$", re.IGNORECASE)


def _clean_point(point: str) -> str:
    point = re.split(r"word\s*count", point, flags=re.IGNORECASE)[0]
    point = re.sub(r"\*\*|__", "", point).strip(" \t-–—:;,|*[]\"'.…")
    point = re.sub(r"^main\s*points?\s*[:：]?\s*", "", point, flags=re.IGNORECASE)
    point = re.sub(r"\s+", " ", point).strip()
    # Placeholders and bare labels ("[...]", "Paragraph 1") are no points.
    if not re.search(r"[^\W\d_]{2,}", point) or _LABEL.match(point):
        return ""
    return point


def _count_in(line: str) -> int:
    match = _COUNT.search(line)
    return int(match.group(1).replace(",", "")) if match else 0


def _parse_json(text: str) -> list[PlanSection]:
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return []
    try:
        data = json.loads(text[start:end + 1])
    except ValueError:
        return []
    items = data.get("sections") if isinstance(data, dict) else None
    out = []
    for item in items or []:
        if isinstance(item, dict) and str(item.get("point", "")).strip():
            try:
                words = int(item.get("words") or 0)
            except (TypeError, ValueError):
                words = 0
            out.append(PlanSection(len(out) + 1, _clean_point(str(item["point"])), words))
    return out


def parse_plan(text: str) -> list[PlanSection]:
    """Sections found in a model's answer, in order; counts of 0 where none was given.

    Accepts the asked format and common variants: "1. point (300 words)", "Section 2:
    point – 400 words", Markdown bold and bullets, a JSON object {"sections": [...]}.
    Lines without a section number, placeholder points and repeated points are skipped.
    """
    found = _parse_json(text)
    if found:
        return found
    out: list[PlanSection] = []
    seen: set[str] = set()
    label_only = False  # "Paragraph 2:" alone on its line: the point is on the next line
    for line in (text or "").splitlines():
        if label_only and line.strip() and not re.match(r"^\W*+(?:paragraph|section|part)\b",
                                                        line, re.IGNORECASE):
            label_only = False
            first = sentences(line.strip())[0]
            point = _clean_point(" ".join(first.split()[:40]))
            if point and point.lower() not in seen:
                seen.add(point.lower())
                out.append(PlanSection(len(out) + 1, point, _count_in(line)))
            continue
        if not re.search(r"\d", line):
            continue
        if _HEADER.match(line):
            label_only = True
            continue
        match = _LINE.match(line)
        if not match:
            continue
        point = _clean_point(match.group("point") or "")
        if not point or _PLACEHOLDER.match(point) or count_words(point) < 2:
            continue
        key = point.lower()
        if key in seen:
            continue
        seen.add(key)
        raw = match.group("count") or match.group("count2") or "0"
        out.append(PlanSection(len(out) + 1, point, int(raw.replace(",", ""))))
    return out


# -- Repair --------------------------------------------------------------------------------

def repair(sections: list[PlanSection], target_words: int) -> tuple[list[PlanSection], list[str]]:
    """Sections whose counts add up to the target, each 200–1,000 words (where the target
    allows: a 150-word text is one section of 150). Returns the sections and the fixes."""
    fixes: list[str] = []
    items = [(s.point, s.words, list(s.serves)) for s in sections if s.point]
    if not items:
        return [], ["no sections"]
    if any(w <= 0 for _, w, _ in items):
        known = [w for _, w, _ in items if w > 0]
        fill = sum(known) / len(known) if known else DEFAULT_SECTION
        items = [(p, w if w > 0 else int(fill), x) for p, w, x in items]
        fixes.append("missing word counts filled in")
    lo_n = max(1, math.ceil(target_words / MAX_SECTION))
    hi_n = max(1, target_words // MIN_SECTION)
    # Too many sections for the target: merge the shortest with its neighbour.
    while len(items) > hi_n:
        def pair(k: int) -> int:
            return k + 1 if k + 1 < len(items) else k - 1

        # A section serving no instruction part goes first (nothing asked is lost).
        i = min(range(len(items)), key=lambda k: (bool(items[k][2] and items[pair(k)][2]),
                                                  items[k][1] + items[pair(k)][1]))
        j = pair(i)
        a, b = sorted((i, j))
        items[a:b + 1] = [(f"{items[a][0]}; {items[b][0]}", items[a][1] + items[b][1],
                           list(dict.fromkeys(items[a][2] + items[b][2])))]
        fixes.append("sections merged")
    # Too few: split the longest in two.
    while len(items) < lo_n:
        i = max(range(len(items)), key=lambda k: items[k][1])
        point, words, served = items[i]
        items[i:i + 1] = [(f"{point} (part 1)", words / 2, served),
                          (f"{point} (part 2)", words / 2, served)]
        fixes.append("sections split")
    counts = distribute(target_words, [max(w, 1) for _, w, _ in items])
    if sum(w for _, w, _ in items) != target_words:
        fixes.append(f"counts rescaled from {int(sum(w for _, w, _ in items)):,} to "
                     f"{target_words:,} words")
    # Clamp into [200, 1000] while keeping the sum: move words from/to the others.
    if target_words >= MIN_SECTION * len(counts):
        for _ in range(len(counts) * 4):
            over = [i for i, c in enumerate(counts) if c > MAX_SECTION]
            under = [i for i, c in enumerate(counts) if c < MIN_SECTION]
            if not over and not under:
                break
            for i in over:
                extra = counts[i] - MAX_SECTION
                counts[i] = MAX_SECTION
                room = [k for k in range(len(counts)) if counts[k] < MAX_SECTION]
                for k, add in zip(room, distribute(extra, [1] * len(room)), strict=True):
                    counts[k] += add
            for i in under:
                need = MIN_SECTION - counts[i]
                donors = [k for k in range(len(counts)) if counts[k] > MIN_SECTION and k != i]
                spare = [counts[k] - MIN_SECTION for k in donors]
                take = distribute(min(need, sum(spare)), spare) if donors else []
                for k, t in zip(donors, take, strict=True):
                    counts[k] -= t
                counts[i] += sum(take)
        if any(c < MIN_SECTION or c > MAX_SECTION for c in counts):
            fixes.append("some counts could not be kept within 200–1,000 words")
    return ([PlanSection(i + 1, p, c, x) for i, ((p, _, x), c) in enumerate(zip(items, counts,
                                                                                strict=True))],
            list(dict.fromkeys(fixes)))


# -- Fallback ------------------------------------------------------------------------------

def _clauses(instruction: str) -> list[str]:
    """The instruction's own parts: list items, sentences, then clauses."""
    lines = [re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", s).strip() for s in instruction.splitlines()]
    parts = [s for s in lines if count_words(s) >= 2]
    if len(parts) <= 1:
        parts = [s.strip() for s in sentences(instruction) if count_words(s) >= 3]
    if len(parts) <= 1:
        parts = [s.strip() for s in re.split(r";|, and |, including |: ", instruction)
                 if count_words(s) >= 3]
    return parts or [instruction.strip()]


# Distinct angles for the middle sections of a fallback plan: the same point repeated
# would make a small model write the same section again and again.
ANGLES = [
    "Background and history", "Key ideas and how they work", "Concrete examples and cases",
    "Causes and driving forces", "Effects on people and society", "Challenges and criticism",
    "Comparisons and alternatives", "Numbers, facts and evidence", "Practical advice and lessons",
    "Open questions and the future",
]


def strip_length_request(text: str) -> str:
    """The instruction without its length request ("a 3000-word essay" → "an essay"): each
    section gets its own count, and the whole-text count would confuse the writer."""
    text = re.sub(r"(?<!\s)\s*+\b(?:(?:in|of|with|at)\s++)?(?:(?:about|around|approximately|"
                  r"roughly|exactly|at least|at most)\s++)?(?<![\d,.])\d[\d,.]*+\s*+k?[\s-]*+"
                  r"words?\b", "", text,
                  flags=re.IGNORECASE)
    text = re.sub(r"\b([Aa]) (?=[aeiouAEIOU])", r"\1n ", text)
    return re.sub(r"\s{2,}", " ", text).strip()


def fallback_plan(instruction: str, target_words: int, note: str = "", *,
                  parts: list[str] | None = None, sections: int | None = None) -> Plan:
    """A deterministic plan: about 500 words a section (or ``sections``); the instruction's
    own parts (``parts`` when read already, else its list items or sentences) as the
    sections' points when it has enough, otherwise introduction / aspects / conclusion."""
    instruction = strip_length_request(instruction.strip())
    n = sections or section_count(target_words)
    parts = parts or _clauses(instruction)
    topic = re.sub(r"\s+", " ", instruction)[:300]
    if n == 1 or len(parts) == 1 == n:
        points = [topic]
    elif len(parts) >= n:
        # Group the instruction's parts into n consecutive runs.
        bounds = [round(i * len(parts) / n) for i in range(n + 1)]
        points = ["; ".join(parts[bounds[i]:bounds[i + 1]]) for i in range(n)]
    else:
        middle = n - 2
        points = [f"Introduction: present the subject and the plan of the text — {topic}"]
        for k in range(middle):
            if k < len(parts) and len(parts) > 1:
                points.append(f"Develop: {parts[k]}")
            else:
                angle = ANGLES[k % len(ANGLES)]
                points.append(f"{angle} — {topic}" if k < len(ANGLES) else
                              f"{angle}, further cases — {topic}")
        points.append(f"Conclusion: draw the threads together — {topic}")
        points = points[:n]
    counts = distribute(target_words, [1] * n)
    sections = [PlanSection(i + 1, p, c) for i, (p, c) in enumerate(zip(points, counts,
                                                                         strict=True))]
    return Plan(sections, "fallback", note or "A deterministic split of the instruction "
                                              "(the model gave no usable plan).")


# -- Asking the model ----------------------------------------------------------------------

def _ask(backend: LLMBackend, prompt: str, n: int, use_schema: bool) -> tuple[str, Usage]:
    # A plan line ("Paragraph 3 - Main point: … - Word count: 400 words") is 25-40 tokens.
    max_tokens = min(45 * n + 40, 1500)
    if use_schema:
        result = backend.chat(prompt, max_tokens=max_tokens, json_schema=PLAN_SCHEMA)
        return result.text, result.usage
    # Streamed, so a model that repeats one line over and over is stopped at once.
    guard = RepetitionGuard(max_repeats=2)
    text, usage, pending = "", None, ""
    events = backend.stream(prompt, max_tokens=max_tokens)
    try:
        for event in events:
            if event.usage is not None:
                usage = event.usage
                continue
            text += event.delta
            pending += event.delta
            while "\n" in pending:
                line, pending = pending.split("\n", 1)
                guard.accept(re.sub(r"\d+", "#", line))  # "same line, other number" repeats
            if guard.looping:
                break
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()
    if usage is None:
        usage = Usage(backend.count_tokens(prompt), backend.count_tokens(text) if text else 0)
    return text, usage


def _usable(sections: list[PlanSection], n: int) -> bool:
    # One long paragraph for a 5-section plan is no plan; so is a wild over-split.
    return bool(sections) and (len(sections) >= max(1, n // 2)) and len(sections) <= 4 * n + 2


def make_plan(backend: LLMBackend, instruction: str, target_words: int, *,
              max_asks: int = 2, fallback: bool = True,
              max_words: int = DEFAULT_MAX_WORDS, topics: list[str] | None = None) -> Plan:
    """Read what the instruction asks for; ask the model for a plan; parse, repair,
    re-ask; else fall back (or raise PlanError when ``fallback`` is False); then check the
    plan against the instruction and add what it misses. An instruction divided into units
    ("one chapter per week of the year") is planned one section per unit, without the
    model. Raises PlanError on a bad request or a contradictory instruction.

    ``topics``: what the reference documents hold (their headings, key passages:
    ``citing.source_topics``). An instruction without parts of its own is then planned from
    them, without the model (``source = "sources"``): the sections follow what there is
    evidence for. The instruction's own units and parts still come first."""
    instruction, spec = check_instruction(instruction, target_words, max_words)
    if spec.units and spec.units.count:
        sections = unit_plan(spec, instruction, target_words)
        units = spec.units
        note = (f"One section per {units.noun} ({units.count}), as the instruction asks "
                f"(“{units.source}”)")
        if spec.items:
            note += "; " + "; ".join(f"{i.label}: {len(i.units)} {units.noun}"
                                     f"{'s' if len(i.units) != 1 else ''}" for i in spec.items)
        return _checked(Plan(sections, "structure", note + ".", requirements=spec),
                        target_words)
    n = section_count(target_words)
    if len(spec.parts) >= 2 and n <= len(spec.parts):
        # The instruction lists as many parts as the text has room for sections: they are
        # the plan (the model would only be checked back to them).
        counts = distribute(target_words, [1] * len(spec.parts))
        sections = [PlanSection(k, p.label[:1].upper() + p.label[1:], w, [p.id])
                    for k, (p, w) in enumerate(zip(spec.parts, counts, strict=True), start=1)]
        return _checked(Plan(sections, "structure", f"One section per part the instruction "
                                                    f"lists ({len(sections)}).",
                             requirements=spec), target_words)
    if topics and not spec.parts:
        plan = fallback_plan(instruction, target_words, parts=topics, sections=n)
        plan.source, plan.requirements = "sources", spec
        if n == 1:  # one section: the instruction's subject, from what the sources hold
            plan.sections[0].point += " — drawing on: " + "; ".join(topics[:ONE_SECTION_TOPICS])
        plan.note = (f"Planned from what the reference documents hold ({len(topics)} "
                     f"heading{'s' if len(topics) != 1 else ''} and key passages).")
        return _checked(plan, target_words)
    if spec.parts:  # a section per part where the target has room for it
        n = max(n, min(len(spec.parts), max(1, target_words // MIN_PART_WORDS)))
    parts = ("\nThe task asks for these parts; give each its own section: "
             + "; ".join(p.label for p in spec.parts) + ".") if spec.parts else ""
    if len(spec.parts) >= 2:
        # The fallback is then the instruction's own parts, one section each: a re-ask
        # costs a plan's worth of decoding to gain little.
        max_asks = min(max_asks, 1)
    trace: list[dict[str, Any]] = []
    usage = Usage()
    use_schema = backend.capabilities.guided_json
    for ask in range(1, max_asks + 1):
        template = PLAN_PROMPT if ask == 1 else REASK_PROMPT
        prompt = template.format(instruction=spec.topic or instruction, target=target_words,
                                 n=n, parts=parts)
        started = time.perf_counter()
        try:
            text, ask_usage = _ask(backend, prompt, n, use_schema)
        except Exception as exc:  # a backend that refuses the schema: plain text next time
            if use_schema and type(exc).__name__ == "CapabilityMissing":
                use_schema = False
                continue
            raise
        usage = usage + ask_usage
        sections = parse_plan(text)
        trace.append({"ask": ask, "schema": use_schema, "sections_parsed": len(sections),
                      "tokens_out": ask_usage.completion_tokens, "answer": text[:2000],
                      "seconds": round(time.perf_counter() - started, 2)})
        if not _usable(sections, n):
            continue
        repaired, fixes = repair(sections, target_words)
        source = "repaired" if fixes else "model"
        note = ("The model's plan, repaired: " + "; ".join(fixes) + ".") if fixes else \
            "The model's plan."
        return _checked(Plan(repaired, source, note, trace, usage, spec), target_words)
    reason = (f"The model gave no usable plan after {max_asks} "
              f"attempt{'s' if max_asks != 1 else ''}")
    if not fallback:
        raise PlanError(reason + ". Try again, or edit the outline by hand.")
    plan = fallback_plan(instruction, target_words,
                         reason + "; the instruction was split deterministically instead.",
                         parts=[p.label for p in spec.parts], sections=n)
    plan.trace, plan.usage, plan.requirements = trace, usage, spec
    return _checked(plan, target_words)


def _checked(plan: Plan, target_words: int) -> Plan:
    """The plan checked against its instruction: missing parts added (said in the note),
    anything still uncovered said too."""
    spec = plan.requirements
    sections, notes = cover_parts(spec, plan.sections, target_words)
    if notes:
        plan.sections = sections
        if plan.source == "model":
            plan.source = "repaired"
        plan.note = (plan.note.rstrip(".") + ". " if plan.note else "") + \
            "Checked against the instruction: " + "; ".join(notes) + "."
    else:
        plan.sections = annotate(spec, plan.sections)
    missing = uncovered(spec, plan.sections)
    if missing:
        plan.note += " Not covered by any section: " + "; ".join(missing) + "."
    return plan
