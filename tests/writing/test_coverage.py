"""A plan checked against its instruction (no model): missing parts added in order, shared
sections split, unit plans with their items, constraints carried by the right sections."""

from __future__ import annotations

from tests.writing.conftest import Canned
from workers.writing import PlanSection, make_plan, read_instruction, section_constraints
from workers.writing.coverage import cover_parts, coverage, unit_plan

BEES = ("Write a practical guide for new beekeepers: equipment, the first inspection, and what "
        "to do in winter.")


def test_the_issue_plan_gets_a_section_for_every_part():
    # The plan the model gave in the issue: one 600-word section on the first inspection.
    spec = read_instruction(BEES, 600)
    one = [PlanSection(1, "The first inspection is a crucial step in the beekeeping process",
                       600)]
    sections, notes = cover_parts(spec, one, 600)
    assert [s.point for s in sections] == [
        "Equipment", "The first inspection is a crucial step in the beekeeping process",
        "What to do in winter"]
    assert sum(s.words for s in sections) == 600 and len(sections) >= 3
    assert "“equipment”" in notes[0] and "“what to do in winter”" in notes[0]
    assert "no section of the plan covered them" in notes[0]
    assert all(c["sections"] for c in coverage(spec, sections))


def test_a_section_naming_every_part_is_split_one_per_part():
    spec = read_instruction(BEES, 900)
    sections, notes = cover_parts(spec, [PlanSection(1, "Intro", 300),
                                         PlanSection(2, BEES, 600)], 900)
    assert [s.point for s in sections] == ["Intro", "Equipment", "The first inspection",
                                           "What to do in winter"]
    assert "split into one section per part" in notes[0]


def test_parts_share_sections_when_the_target_is_short():
    spec = read_instruction("Write about bread: flour, water, salt, yeast, kneading, proofing, "
                            "shaping and baking.", 300)
    sections, _ = cover_parts(spec, [PlanSection(1, "Bread basics", 300)], 300)
    assert len(sections) <= 3 and sum(s.words for s in sections) == 300
    assert all(c["sections"] for c in coverage(spec, sections))  # nothing dropped


def test_a_complete_plan_is_left_alone():
    spec = read_instruction(BEES, 1500)
    plan = [PlanSection(1, "Choosing equipment: hive, suit, smoker", 500),
            PlanSection(2, "Your first inspection, frame by frame", 500),
            PlanSection(3, "Helping the colony through winter", 500)]
    sections, notes = cover_parts(spec, plan, 1500)
    assert notes == [] and [s.words for s in sections] == [500, 500, 500]


def test_unit_plan_puts_each_item_in_its_weeks_and_constraints_follow():
    spec = read_instruction(
        "Write a travel diary with one chapter per week of the year, the trip to Paris in weeks "
        "24–25, a workshop every 5 weeks from week 13. End each chapter with a checklist. "
        "Separate entries with ###.", 10_000)
    sections = unit_plan(spec, "", 10_000)
    assert len(sections) == 52 and sum(s.words for s in sections) == 10_000
    assert sections[23].point == "Week 24: the trip to Paris"
    assert sections[12].point == "Week 13: a workshop" and sections[17].point.endswith("workshop")
    carried = section_constraints(spec, sections)
    assert [c.kind for c in carried[24]] == ["ending", "item"]
    assert [c.kind for c in carried[2]] == ["ending"]  # no item due in week 2
    assert all(c["sections"] for c in coverage(spec, sections))


def test_a_table_goes_to_the_section_about_its_subject():
    spec = read_instruction("Write a report on solar panels covering costs, installation and "
                            "maintenance. Include a table of costs.", 1500)
    sections = [PlanSection(1, "Installation", 500), PlanSection(2, "What it costs", 500),
                PlanSection(3, "Maintenance", 500)]
    carried = section_constraints(spec, sections)
    assert [c.kind for c in carried[2]] == ["table"] and carried[1] == carried[3] == []


def test_make_plan_repairs_a_model_plan_that_misses_parts(llm):
    # 2,000 words: room for more sections than parts, so the model plans; its plan misses two.
    canned = Canned(llm, ["Paragraph 1 - Main point: The first inspection is a crucial step "
                          "in the beekeeping process - Word count: 1000 words\n"
                          "Paragraph 2 - Main point: Why people keep bees at all - Word count: "
                          "1000 words"])
    plan = make_plan(canned, BEES, 2000)
    assert canned.calls == 1 and plan.source == "repaired" and plan.total == 2000
    assert {s.point for s in plan.sections} >= {"Equipment", "What to do in winter"}
    assert "Added sections for “equipment”, “what to do in winter”" in plan.note
    assert all(c["sections"] for c in plan.to_dict()["coverage"])


def test_the_issue_instruction_at_600_words_is_one_section_per_part(llm):
    canned = Canned(llm, ["never asked"])
    plan = make_plan(canned, BEES, 600)
    assert canned.calls == 0 and plan.source == "structure"
    assert [(s.point, s.words) for s in plan.sections] == [
        ("Equipment", 200), ("The first inspection", 200), ("What to do in winter", 200)]


def test_make_plan_of_a_unit_instruction_needs_no_model(llm):
    canned = Canned(llm, ["never asked"])
    plan = make_plan(canned, "Write a diary with one entry per week for 6 weeks; the storm in "
                             "week 4.", 1200)
    assert canned.calls == 0 and plan.source == "structure"
    assert [s.point for s in plan.sections][3] == "Week 4: the storm" and plan.total == 1200
