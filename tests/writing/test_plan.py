"""Plans: parsing good, odd and bad model output (deterministic), repair, the fallback split,
the re-ask, and one real planning call."""

from __future__ import annotations

import pytest

from tests.writing.conftest import Canned
from workers.writing import PlanError, check_request, fallback_plan, make_plan, parse_plan, repair
from workers.writing.plan import MAX_SECTION, MIN_SECTION, PlanSection, strip_length_request

GOOD = "\n".join([
    "Paragraph 1 - Main Point: Introduce the history of bicycles - Word Count: 300 words",
    "Paragraph 2 - Main Point: The draisine of 1817 and early designs - Word Count: 400 words",
    "Paragraph 3 - Main Point: The safety bicycle and the bicycle boom - Word Count: 300 words",
])


def test_parse_the_asked_format():
    sections = parse_plan(GOOD)
    assert [(s.index, s.words) for s in sections] == [(1, 300), (2, 400), (3, 300)]
    assert sections[1].point == "The draisine of 1817 and early designs"


def test_parse_odd_variants():
    odd = """Here is the plan:
**Paragraph 1** – Main point: Why cities need trees – Word count: 250 words
2. How trees cool streets (350 words)
Section 3: Costs, care and who pays - 400 words
- Paragraph 4 — Main Point: Conclusion and a call to act — Word Count: 1,000 words
Paragraph 5 - Main Point: [...] - Word Count: [...]
Paragraph 6 - Main Point: How trees cool streets - Word Count: 300"""
    sections = parse_plan(odd)
    assert [s.point for s in sections] == [
        "Why cities need trees", "How trees cool streets", "Costs, care and who pays",
        "Conclusion and a call to act"]  # placeholder and repeated point skipped
    assert [s.words for s in sections] == [250, 350, 400, 1000]


def test_parse_label_then_point_on_the_next_line():
    text = "Paragraph 1:\nThe origins of tea in China. More.\n\nParagraph 2:\nTea reaches Europe"
    assert [s.point for s in parse_plan(text)] == ["The origins of tea in China",
                                                   "Tea reaches Europe"]


def test_parse_json():
    text = 'Sure: {"sections": [{"point": "Intro to tea", "words": 300}, ' \
           '{"point": "Tea today", "words": 700}]}'
    assert [(s.point, s.words) for s in parse_plan(text)] == [("Intro to tea", 300),
                                                              ("Tea today", 700)]


@pytest.mark.parametrize("bad", [
    "", "I cannot help with that.", "The word count is 100 words.\n" * 5,
    "Paragraph 1 - Main Point: [...] - Word Count: [...]"])
def test_parse_bad_output_gives_nothing(bad):
    assert parse_plan(bad) == []


def test_repair_rescales_to_the_target_and_clamps():
    sections = [PlanSection(1, "A point here", 100), PlanSection(2, "B point here", 0),
                PlanSection(3, "C point here", 3000)]
    fixed, fixes = repair(sections, 2000)
    assert sum(s.words for s in fixed) == 2000
    assert all(MIN_SECTION <= s.words <= MAX_SECTION for s in fixed)
    assert fixes and "missing word counts filled in" in fixes
    # Too many sections for a short target are merged; too few for a long one are split.
    many = [PlanSection(i, f"Point number {i}", 300) for i in range(1, 7)]
    merged, _ = repair(many, 600)
    assert len(merged) == 3 and sum(s.words for s in merged) == 600
    split, _ = repair([PlanSection(1, "Everything at once", 5000)], 5000)
    assert len(split) >= 5 and all(s.words <= MAX_SECTION for s in split)


def test_repair_of_a_good_plan_changes_nothing():
    sections = parse_plan(GOOD)
    fixed, fixes = repair(sections, 1000)
    assert fixes == [] and [s.words for s in fixed] == [300, 400, 300]


def test_fallback_is_deterministic_and_sums_to_the_target():
    instruction = "Write a 3000-word report. Cover the causes of floods. Explain the effects " \
                  "on cities. Propose policies. Conclude with an outlook."
    a, b = fallback_plan(instruction, 3000), fallback_plan(instruction, 3000)
    assert a.sections == b.sections and a.source == "fallback"
    assert a.total == 3000 and len(a.sections) == 6
    assert all(MIN_SECTION <= s.words <= MAX_SECTION for s in a.sections)
    assert len({s.point for s in a.sections}) == len(a.sections)  # no point twice
    assert not any("3000" in s.point for s in a.sections)  # the whole-text count is dropped


def test_strip_length_request():
    assert strip_length_request("Write a 3000-word essay on tea.") == "Write an essay on tea."
    assert strip_length_request("Describe Paris in about 5,000 words.") == "Describe Paris."


@pytest.mark.parametrize(("instruction", "target", "message"), [
    ("", 1000, "instruction"), ("   ", 1000, "instruction"), ("Tea", 0, "positive"),
    ("Tea", -5, "positive"), ("Tea", 60_000, "limit"), ("Tea", "many", "whole number"),
])
def test_bad_requests_are_refused_clearly(instruction, target, message):
    with pytest.raises(PlanError, match=message):
        check_request(instruction, target, 50_000)


def test_unusable_plans_are_reasked_then_fall_back(llm):
    canned = Canned(llm, ["I love writing!", "The word count requirement is 100 words."])
    plan = make_plan(canned, "Write about the history of tea.", 1500)
    assert canned.calls == 2  # asked, re-asked
    assert plan.source == "fallback" and "no usable plan after 2 attempts" in plan.note
    assert plan.total == 1500 and len(plan.trace) == 2


def test_unusable_plan_without_fallback_is_a_clear_error(llm):
    canned = Canned(llm, ["nonsense"])
    with pytest.raises(PlanError, match="no usable plan"):
        make_plan(canned, "Write about tea.", 1000, fallback=False)


def test_a_good_second_answer_is_used(llm):
    canned = Canned(llm, ["nonsense", GOOD])
    plan = make_plan(canned, "Write about the history of bicycles.", 1000)
    assert plan.source == "model" and plan.total == 1000 and len(plan.sections) == 3
