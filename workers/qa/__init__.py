"""Question answering over long documents: full, rag, Chain-of-Agents, XL3M, auto.

from workers.qa import answer, SourceDocument
result = answer("What is the pass key?", [SourceDocument(1, "Notes", text)], strategy="auto")
result.text, result.citations, result.trace, result.usage, result.strategy, result.reason

Plain Python, no Django; the LLM is reached only through ``workers.llm``.
"""

from __future__ import annotations

from .auto import Decision, choose
from .engine import answer
from .haystack import Haystack, build_haystack
from .options import STRATEGIES, STRATEGY_NAMES, Strategy, StrategyOptions, parse_options
from .prompts import SYSTEM_PROMPT, UNTRUSTED_RULE
from .retrieval import InMemoryRetriever
from .types import (
    Answer,
    Citation,
    DocumentsTooLong,
    Passage,
    QuestionTooLong,
    Retriever,
    SourceDocument,
    TraceStep,
    UnknownStrategy,
)

__all__ = [
    "STRATEGIES",
    "STRATEGY_NAMES",
    "SYSTEM_PROMPT",
    "UNTRUSTED_RULE",
    "Answer",
    "Citation",
    "Decision",
    "DocumentsTooLong",
    "Haystack",
    "InMemoryRetriever",
    "Passage",
    "QuestionTooLong",
    "Retriever",
    "SourceDocument",
    "Strategy",
    "StrategyOptions",
    "TraceStep",
    "UnknownStrategy",
    "answer",
    "build_haystack",
    "choose",
    "parse_options",
]
