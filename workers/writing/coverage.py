"""A plan checked against what the instruction asks for (instruction.py's Spec).

Every part gets a section (a section serves a part when its point names it, or when it was
made for it); a missing part is added as a section, in the instruction's order, and the
plan note says so. An instruction divided into units ("one chapter per week of the year")
gets one section per unit, with the items due in each. ``section_constraints`` says which
constraints each section carries; ``coverage`` is what the outline editor shows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from workers.writing.instruction import Constraint, Part, Spec
from workers.writing.sections import MIN_SECTION, PlanSection, distribute
from workers.writing.vocabulary import PLURALS, UNIT, UNITS, mentions

# "Week 24", "chapters 3": a unit named in a section's point.
_UNIT_AT = re.compile(rf"\b(?P<unit>{UNITS}|{UNIT})\s{{0,3}}(?P<n>\d{{1,4}})\b", re.IGNORECASE)
# A section made for a part needs this many words at least; fewer, and parts share sections.
MIN_PART_WORDS = 100


def _unit_numbers(spec: Spec, section: PlanSection) -> list[int]:
    numbers = [int(s.split(":", 1)[1]) for s in section.serves if s.startswith("unit:")]
    if numbers or spec.units is None:
        return numbers
    # A section typed by hand: "Week 24: Paris" serves week 24.
    return [int(m.group("n")) for m in _UNIT_AT.finditer(section.point)
            if m.group("unit").lower() in (spec.units.noun, PLURALS[spec.units.noun])][:1]


def serves(spec: Spec, section: PlanSection) -> list[str]:
    """The ids of the parts, units and items ``section`` serves: those it was made for,
    those its point names."""
    out = list(section.serves)
    for part in spec.parts:
        if part.id not in out and mentions(section.point, part.keywords):
            out.append(part.id)
    units = _unit_numbers(spec, section)
    for n in units:
        if f"unit:{n}" not in out:
            out.append(f"unit:{n}")
    for item in spec.items:
        if item.id not in out and set(item.units) & set(units):
            out.append(item.id)
    return out


def annotate(spec: Spec, sections: list[PlanSection]) -> list[PlanSection]:
    """Each section's ``serves`` completed from its point (after the user edited it)."""
    for section in sections:
        section.serves = serves(spec, section)
    return sections


def _label_point(part: Part) -> str:
    return part.label[:1].upper() + part.label[1:]


def unit_plan(spec: Spec, instruction: str, target_words: int) -> list[PlanSection]:
    """One section per unit ("Week 1" … "Week 52"), each naming the items due in it and the
    parts given to it (spread evenly), the words shared out (or as many as the instruction
    gives each)."""
    units = spec.units
    assert units is not None and units.count
    noun = units.noun.capitalize()
    given: dict[int, list[Part]] = {}
    for j, part in enumerate(spec.parts):
        given.setdefault(j * units.count // max(1, len(spec.parts)) + 1, []).append(part)
    counts = distribute(target_words, [1] * units.count)
    sections = []
    for n in range(1, units.count + 1):
        due = [i for i in spec.items if n in i.units] + given.get(n, [])
        point = f"{noun} {n}" + (": " + "; ".join(p.label for p in due) if due else "")
        ids = [f"unit:{n}"] + [p.id for p in due]
        sections.append(PlanSection(n, point, counts[n - 1], ids))
    return sections


def cover_parts(spec: Spec, sections: list[PlanSection], target_words: int
                ) -> tuple[list[PlanSection], list[str]]:
    """Sections with a section for every part of ``spec`` (added where missing, in the
    instruction's order; parts share a section when the target cannot give each its own).
    Returns the sections (renumbered, counts summing to the target) and what was done."""
    notes: list[str] = []
    sections = annotate(spec, [PlanSection(s.index, s.point, s.words, list(s.serves))
                               for s in sections])
    order = {p.id: k for k, p in enumerate(spec.parts)}
    # Room for a section per part (down to MIN_PART_WORDS each), else for the usual
    # 200-word sections: other sections give way first.
    room = max(1, min(target_words // MIN_PART_WORDS,
                      max(len(spec.parts), target_words // MIN_SECTION)))
    sections = _split_shared(spec, sections, room, notes)
    missing = [p for p in spec.parts if not any(p.id in s.serves for s in sections)]
    if not missing:
        if notes:
            _renumber(sections, target_words)
        return sections, notes
    typical = sorted(s.words for s in sections)[len(sections) // 2] if sections else 0
    added = []
    for part in missing:
        k = order[part.id]
        after = [i for i, s in enumerate(sections)
                 if any(order.get(x, 10**6) < k for x in s.serves)]
        before = [i for i, s in enumerate(sections)
                  if any(k < order.get(x, -1) for x in s.serves if x in order)]
        where = after[-1] + 1 if after else (before[0] if before else len(sections))
        sections.insert(where, PlanSection(0, _label_point(part), typical or MIN_SECTION,
                                           [part.id]))
        added.append(part)
    merged = 0
    while len(sections) > room:
        # Merge where the least is lost: a section serving no part into its neighbour
        # first, else the two shortest neighbours.
        def cost(i: int) -> tuple[int, int]:
            a, b = sections[i], sections[i + 1]
            return (1 if a.serves and b.serves else 0, a.words + b.words)

        i = min(range(len(sections) - 1), key=cost)
        a, b = sections[i], sections[i + 1]
        sections[i:i + 2] = [PlanSection(0, f"{a.point}; {b.point}", a.words + b.words,
                                         list(dict.fromkeys(a.serves + b.serves)))]
        merged += 1
    _renumber(sections, target_words)
    names = ", ".join(f"“{p.label}”" for p in added)
    positions = [s.index for s in sections if any(p.id in s.serves for p in added)]
    notes.append(f"Added {'a section' if len(added) == 1 else 'sections'} for {names} "
                 f"(now section{'s' if len(positions) > 1 else ''} "
                 f"{', '.join(map(str, positions))}): the instruction asks for "
                 f"{'it' if len(added) == 1 else 'them'} and no section of the plan covered "
                 f"{'it' if len(added) == 1 else 'them'}")
    if merged:
        notes.append(f"{merged} merge{'s' if merged > 1 else ''} so that each section keeps "
                     f"at least {MIN_PART_WORDS} words of the {target_words:,}")
    return sections, notes


def _renumber(sections: list[PlanSection], target_words: int) -> None:
    counts = distribute(target_words, [max(s.words, 1) for s in sections])
    for n, (section, words) in enumerate(zip(sections, counts, strict=True), start=1):
        section.index, section.words = n, words


def _split_shared(spec: Spec, sections: list[PlanSection], room: int, notes: list[str]
                  ) -> list[PlanSection]:
    """A section that alone names several parts ("equipment, inspection and winter") is
    split into one section per part, where the target has room: one section asked to
    cover three things covers one of them."""
    parts = {p.id: p for p in spec.parts}
    owners: dict[str, int] = {}
    for section in sections:
        for x in section.serves:
            owners[x] = owners.get(x, 0) + 1
    out: list[PlanSection] = []
    extra = 0
    for k, section in enumerate(sections):
        own = [x for x in section.serves if x in parts and owners[x] == 1]
        if len(own) < 2 or len(sections) + extra + len(own) - 1 > room:
            out.append(section)
            continue
        extra += len(own) - 1
        share = max(1, section.words // len(own))
        out += [PlanSection(0, _label_point(parts[x]), share, [x]) for x in own]
        notes.append(f"section {k + 1} (“{section.point[:80]}”) split into one section per "
                     f"part it named: " + ", ".join(f"“{parts[x].label}”" for x in own))
    return out


def coverage(spec: Spec, sections: Iterable[PlanSection]) -> list[dict]:
    """For each part, unit item and constraint bound to sections: which sections serve it
    (by position); an empty list is a part the plan misses."""
    sections = list(sections)
    out = []
    for part in [*spec.parts, *spec.items]:
        where = [s.index for s in sections if part.id in serves(spec, s)]
        out.append({"id": part.id, "kind": part.kind, "label": part.label, "sections": where,
                    "units": part.units})
    return out


def uncovered(spec: Spec, sections: Iterable[PlanSection]) -> list[str]:
    return [c["label"] for c in coverage(spec, sections) if not c["sections"]]


def _table_section(spec: Spec, constraint: Constraint, sections: list[PlanSection]) -> int:
    """The section that carries a once-only constraint (a table of costs): the one whose
    point (or a part it serves) names its subject, else the longest."""
    parts = {p.id: p for p in spec.parts}
    for section in sections:
        named = section.point + " " + " ".join(parts[x].label for x in section.serves
                                               if x in parts)
        if constraint.keywords and mentions(named, constraint.keywords):
            return section.index
    return max(sections, key=lambda s: s.words).index if sections else 0


def section_constraints(spec: Spec, sections: list[PlanSection]) -> dict[int, list[Constraint]]:
    """{section index: the constraints it must meet}. Document-level ones (the separator)
    are kept by the join, not by a section."""
    out: dict[int, list[Constraint]] = {s.index: [] for s in sections}
    for constraint in spec.constraints:
        if constraint.scope == "each":
            for section in sections:
                out[section.index].append(constraint)
        elif constraint.scope == "units":
            for section in sections:
                if constraint.part in serves(spec, section):
                    out[section.index].append(constraint)
        elif constraint.scope == "once" and sections:
            out[_table_section(spec, constraint, sections)].append(constraint)
    return out
