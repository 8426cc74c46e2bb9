"""AgentWrite long writing and length control: plan → sections → text on target length.

No Django here. Entry points: ``make_plan`` (plan.py), ``write_document`` /
``write_section`` (writer.py), and ``write_to_length`` / ``requested_words`` /
``length_score`` (length.py) for any output that must hit a word count.
"""

from __future__ import annotations

from workers.writing.length import (
    LengthResult,
    count_words,
    distinct_ngram_share,
    length_score,
    requested_words,
    trim_to_words,
    write_to_length,
)
from workers.writing.plan import (
    Plan,
    PlanError,
    PlanSection,
    check_request,
    fallback_plan,
    make_plan,
    parse_plan,
    repair,
)
from workers.writing.writer import DocumentResult, SectionResult, write_document, write_section

__all__ = [
    "DocumentResult", "LengthResult", "Plan", "PlanError", "PlanSection", "SectionResult",
    "check_request", "count_words", "distinct_ngram_share", "fallback_plan", "length_score",
    "make_plan", "parse_plan", "repair", "requested_words", "trim_to_words", "write_document",
    "write_section", "write_to_length",
]
