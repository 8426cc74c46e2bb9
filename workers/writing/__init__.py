"""AgentWrite long writing and length control: plan → sections → text on target length.

No Django here. Entry points: ``read_instruction`` (instruction.py: the parts, units,
schedules and constraints an instruction states), ``make_plan`` (plan.py, checked against
them by coverage.py), ``write_document`` / ``write_section`` (writer.py; each section's
constraints checked and fixed by checks.py, repeats across sections by overlap.py), and
``write_to_length`` / ``requested_words`` / ``length_score`` (length.py) for any output
that must hit a word count.
"""

from __future__ import annotations

from workers.writing.checks import Check, check, enforce
from workers.writing.coverage import coverage, section_constraints
from workers.writing.instruction import (
    DEFAULT_TARGET_WORDS,
    Constraint,
    Spec,
    read_instruction,
    stated_length,
    target_words_for,
)
from workers.writing.length import (
    LengthResult,
    count_words,
    distinct_ngram_share,
    length_score,
    requested_words,
    trim_to_words,
    write_to_length,
)
from workers.writing.overlap import cross_section_repetition, repeated_paragraphs, repetition
from workers.writing.plan import (
    Plan,
    PlanError,
    PlanSection,
    check_instruction,
    check_request,
    fallback_plan,
    make_plan,
    parse_plan,
    repair,
)
from workers.writing.writer import (
    DocumentResult,
    SectionResult,
    join_sections,
    write_document,
    write_section,
)

__all__ = [
    "Check", "Constraint", "DocumentResult", "LengthResult", "Plan", "PlanError", "PlanSection",
    "SectionResult", "Spec", "check", "check_instruction", "check_request", "count_words",
    "coverage", "cross_section_repetition", "distinct_ngram_share", "enforce", "fallback_plan",
    "join_sections", "length_score", "make_plan", "parse_plan", "read_instruction", "repair",
    "repeated_paragraphs", "repetition", "requested_words", "section_constraints",
    "stated_length", "target_words_for", "DEFAULT_TARGET_WORDS",
    "trim_to_words", "write_document", "write_section", "write_to_length",
]
