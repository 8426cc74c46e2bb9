"""Token budgets: what is left of the window for document text, and early refusals."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from workers.llm.base import LLMBackend

from .prompts import answer_messages
from .types import QuestionTooLong

# Below this many tokens of room for document text no strategy can do anything useful.
MIN_CONTENT_TOKENS = 128
DEFAULT_ANSWER_TOKENS = 128
DEFAULT_HISTORY_TOKENS = 512


# A question, not material: longer text belongs in a document (and would crowd the window
# and every XL3M scoring pass).
MAX_QUESTION_CHARS = 4_000


def check_question(question: str, max_chars: int | None = MAX_QUESTION_CHARS) -> str:
    """The question, stripped; ``ValueError`` with a message for the person asking.
    (``answer()`` checks the length after the window: a question longer than the window is
    ``QuestionTooLong``, whatever its characters.)"""
    if not isinstance(question, str) or not question.strip():
        raise ValueError("the question is empty: ask something about the documents")
    question = question.strip()
    if max_chars is not None and len(question) > max_chars:
        raise ValueError(
            f"the question is too long ({len(question):,} characters; at most "
            f"{max_chars:,}): put long material in a document and ask about it"
        )
    if not any(ch.isalnum() for ch in question):
        raise ValueError("the question has no words, only punctuation or symbols: "
                         "ask something about the documents")
    return question


def fit_history(
    backend: LLMBackend,
    history: Sequence[Mapping[str, str]] | None,
    max_tokens: int = DEFAULT_HISTORY_TOKENS,
) -> list[dict[str, str]]:
    """The most recent turns that fit ``max_tokens`` (older turns are dropped whole)."""
    kept: list[dict[str, str]] = []
    used = 0
    for turn in reversed(list(history or [])):
        if turn.get("role") not in ("user", "assistant") or not turn.get("content"):
            continue
        cost = backend.count_tokens(str(turn["content"])) + 4  # + chat-template framing
        if used + cost > max_tokens:
            break
        kept.insert(0, {"role": turn["role"], "content": str(turn["content"])})
        used += cost
    return kept


def overhead_tokens(
    backend: LLMBackend,
    question: str,
    history: Sequence[Mapping[str, str]] | None = None,
    instructions: str = "",
    blocks: int = 1,
) -> int:
    """Tokens of the answer prompt without document text (tags of ``blocks`` blocks counted)."""
    empty = ['<document id="x" title="">\n\n</document>'] * blocks
    return backend.count_tokens(answer_messages(question, empty, history, instructions)) + 16 * (
        blocks
    )


def content_budget(
    backend: LLMBackend,
    question: str,
    history: Sequence[Mapping[str, str]] | None = None,
    answer_tokens: int = DEFAULT_ANSWER_TOKENS,
    instructions: str = "",
    blocks: int = 1,
) -> int:
    """budget = window − question − instructions − history − room for the answer.

    Raises ``QuestionTooLong`` when less than ``MIN_CONTENT_TOKENS`` would remain.
    """
    window = backend.context_window
    overhead = overhead_tokens(backend, question, history, instructions, blocks)
    budget = window - overhead - answer_tokens
    if budget < MIN_CONTENT_TOKENS:
        raise QuestionTooLong(
            overhead,
            window,
            answer_tokens,
            message=(
                f"the question, instructions and history take {overhead} tokens; with "
                f"{answer_tokens} for the answer that leaves {max(budget, 0)} of the "
                f"{window}-token window for the documents (at least {MIN_CONTENT_TOKENS} "
                "needed): shorten the question or the history"
            ),
        )
    return budget
