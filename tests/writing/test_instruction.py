"""Reading what an instruction asks for (no model): parts of enumerations and lists, units,
schedules expanded into units, constraints, and the contradictions refused before planning."""

from __future__ import annotations

import pytest

from workers.writing import PlanError, check_instruction, read_instruction
from workers.writing.instruction import (
    DEFAULT_TARGET_WORDS,
    MAX_INSTRUCTION_CHARS,
    stated_length,
    target_words_for,
)


def labels(spec):
    return [p.label for p in spec.parts]


@pytest.mark.parametrize(("instruction", "parts"), [
    ("Write a practical guide for new beekeepers: equipment, the first inspection, and what "
     "to do in winter.", ["equipment", "the first inspection", "what to do in winter"]),
    ("Write a report on urban trees covering cooling, shade and air quality.",
     ["cooling", "shade", "air quality"]),
    ("Write a guide to Lisbon.\n- Where to stay\n- What to eat\n- Day trips\n",
     ["Where to stay", "What to eat", "Day trips"]),
    ("Explain how a bill becomes law, including committees, floor votes and the veto.",
     ["committees", "floor votes", "the veto"]),
    ("Compose an essay about sourdough: starters, flour, hydration, baking.",
     ["starters", "flour", "hydration", "baking"]),
])
def test_parts_of_enumerations_and_lists(instruction, parts):
    assert labels(read_instruction(instruction, 1000)) == parts


@pytest.mark.parametrize("instruction", [
    "Write about cats and dogs.",  # one subject, not a list of parts
    "Write a 3000-word essay on the history of tea.",
    "Tell the story of a lighthouse keeper who finds a message in a bottle.",
    # A list of how to write (HelloBench's requirements) is no list of parts; "every other
    # week" in a story is no diary of weeks.
    "Write a story. [Writing Prompt]: you take the form of another person every other week.\n"
    "[Requirements]:\n1. Feel free to use creativity to expand on the prompt.\n2. Ensure the "
    "story is no shorter than 3000 words.\n",
    "Write an essay:\n1. The essay should be coherent and formal.\n2. Provide at least three "
    "arguments.\n3. Address one counterargument.\n",
])
def test_no_parts_where_none_are_listed(instruction):
    spec = read_instruction(instruction, 3000)
    assert spec.parts == [] and spec.units is None and spec.problems == []


def test_weekly_schedule_expands_into_its_weeks():
    spec = read_instruction(
        "Write a travel diary with one chapter per week of the year, the trip to Paris in weeks "
        "24–25, a workshop every 5 weeks from week 13.", 10_000)
    assert (spec.units.noun, spec.units.count) == ("week", 52)
    items = {i.label: i.units for i in spec.items}
    assert items["the trip to Paris"] == [24, 25]
    assert items["a workshop"] == [13, 18, 23, 28, 33, 38, 43, 48]
    assert spec.problems == []


def test_units_from_counts_hyphens_and_schedules():
    assert read_instruction("Write a novel in 12 chapters about a heist.", 6000).units.count == 12
    spec = read_instruction("Plan a 12-week marathon training programme. A rest week every "
                            "4 weeks from week 4; the race in week 12.", 3000)
    assert (spec.units.noun, spec.units.count) == ("week", 12)
    assert {i.label: i.units for i in spec.items} == {"A rest week": [4, 8, 12],
                                                       "the race": [12]}
    inferred = read_instruction("Write a garden diary; plant beans in month 3 and harvest "
                                "them in month 8.", 4000)
    assert inferred.units.noun == "month" and inferred.units.count == 8


def test_constraints_are_read():
    spec = read_instruction(
        "Write a guide to home brewing: equipment, brewing day and bottling. End each section "
        "with a checklist. Separate sections with ###. Write in British English. Include a "
        "table of costs.", 2000)
    kinds = {c.kind: c for c in spec.constraints}
    assert kinds["ending"].value == "checklist" and kinds["ending"].scope == "each"
    assert kinds["separator"].value == "###" and spec.separator == "###"
    assert kinds["language"].value == "en-GB"
    assert kinds["table"].scope == "once" and "cost" in kinds["table"].keywords
    # Constraint sentences are no parts.
    assert labels(spec) == ["equipment", "brewing day", "bottling"]
    question = read_instruction("Write six short chapters about a fox. Each chapter should "
                                "end with a question.", 1800)
    assert [(c.kind, c.value) for c in question.constraints] == [("ending", "question")]


@pytest.mark.parametrize(("instruction", "target", "message"), [
    ("Write a novel of 30 chapters of 500 words about a lighthouse.", 1000,
     "30 chapters of 500 words (15,000 words), but the target length is 1,000"),
    ("Write a year-long diary; the wedding in week 60 of the year.", 5000,
     "Week 60 does not exist: a year has 52 weeks"),
    ("Write a diary with one entry per week of the year; the move in week 60.", 10_000,
     "due in week 60, but a year has 52 weeks"),
    ("Write one chapter per week of the year about a farm.", 1000, "leave 19 words each"),
    ("Write a training log for 10 weeks with a race every 3 weeks.", 2000, ""),
])
def test_contradictions_are_refused_before_planning(instruction, target, message):
    spec = read_instruction(instruction, target)
    if not message:
        assert spec.problems == []
        return
    assert any(message in p for p in spec.problems), spec.problems
    with pytest.raises(PlanError, match=message[:20]):
        check_instruction(instruction, target)


def test_a_very_long_instruction_is_refused_with_its_length():
    long = "Write about the sea. " * 1000
    assert len(long) > MAX_INSTRUCTION_CHARS
    with pytest.raises(PlanError, match=r"20,999 characters long; the limit is 8,000"):
        check_instruction(long, 1000)


def test_spec_survives_a_round_trip():
    spec = read_instruction("Write a diary with one entry per week for 8 weeks, the storm in "
                            "week 3. End each entry with a question.", 2000)
    from workers.writing import Spec

    again = Spec.from_dict(spec.to_dict())
    assert again == spec and again.items[0].units == [3]


@pytest.mark.parametrize(("instruction", "words"), [
    ("Write a 400-word essay on the tides.", 400),
    ("A guide to beekeeping in about 3,000 words.", 3000),
    ("Summarise the year in 2k words.", 2000),
    ("A diary of 30 chapters of 500 words.", 15000),  # units × words each
    ("A diary of 12 entries, each entry under 150 words.", 1800),
    ("Write 200 words per chapter, 10 chapters about sailing.", 2000),
    ("Twelve letters of about 300 words each.", 3600),
    ("Each section under 100 words; cover the tides and the moon.", None),  # of a part only
    ("A report on the harbour's year: traffic, works and finances.", None),
])
def test_stated_length_is_the_whole_texts(instruction, words):
    assert stated_length(instruction) == words


def test_target_is_the_given_else_the_stated_else_the_default():
    assert target_words_for("Write a 400-word essay on tides.", 2500) == 2500
    assert target_words_for("Write a 400-word essay on tides.", None) == 400
    assert target_words_for("An essay on tides.", None) == DEFAULT_TARGET_WORDS
