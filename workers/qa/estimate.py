"""What a question will cost before it runs: per strategy the model calls, the tokens read
and written, and the seconds on the configured backend at its measured rates
(``workers.llm.rates``), with the strategy ``auto`` would pick and why.

The token counts follow each strategy's own sizes (its options' defaults, the window's
budget): ``full`` reads everything once; ``rag`` reads its passages once; ``xl3m`` scores
every segment (or the fast path's candidates) and answers from a few key sentences; ``coa``
sends one worker per chunk and a manager; ``mapreduce`` reads every chunk at once (their
written tokens decoded side by side), merges the notes and answers. Seconds are None until
the backend's rates are known (a few answered questions).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from workers.llm.base import LLMBackend
from workers.llm.rates import Rates, current_rates

from .auto import choose
from .coa import DEFAULT_CU_TOKENS, EVIDENCE_ROOM
from .extract import wants_token
from .mapreduce import DEFAULT_NOTE_TOKENS, MIN_CHUNK_TOKENS, concurrency
from .rag import DEFAULT_CONTEXT_TOKENS
from .types import SourceDocument
from .xl3m import (
    DEFAULT_KEY_SENTENCES,
    DEFAULT_SEGMENT_TOKENS,
    FAST_PATH_CANDIDATES,
    FAST_PATH_SEGMENTS,
)

SENTENCE_TOKENS = 40  # a key sentence, on average
TOKEN_ANSWER = 32  # a key, number or code needs few tokens (answering.TOKEN_ANSWER_TOKENS)


@dataclass(frozen=True)
class Estimate:
    strategy: str
    calls: int
    prompt_tokens: int
    completion_tokens: int
    seconds: float | None
    note: str = ""


@dataclass(frozen=True)
class Preview:
    document_tokens: int
    budget: int
    choice: str  # what auto would do
    reason: str
    estimates: list[Estimate] = field(default_factory=list)
    rates: Rates | None = None

    def estimate(self, strategy: str) -> Estimate | None:
        wanted = self.choice if strategy == "auto" else strategy
        return next((e for e in self.estimates if e.strategy == wanted), None)

    def to_dict(self) -> dict[str, Any]:
        return {"document_tokens": self.document_tokens, "budget": self.budget,
                "auto": {"strategy": self.choice, "reason": self.reason},
                "estimates": [asdict(e) for e in self.estimates],
                "rates": asdict(self.rates) if self.rates else None}


def preview(
    question: str,
    documents: Sequence[SourceDocument],
    backend: LLMBackend,
    *,
    history: Sequence[Mapping[str, str]] | None = None,
    answer_tokens: int = 128,
    has_retriever: bool = True,
    rates: Rates | None = None,
) -> Preview:
    """The cost of ``question`` over ``documents`` with each strategy (see the module)."""
    decision = choose(question, documents, backend, history=history,
                      answer_tokens=answer_tokens, has_retriever=has_retriever)
    total = int(decision.facts["document_tokens"])
    budget = int(decision.facts["budget"])
    overhead = max(0, backend.context_window - budget - answer_tokens)
    answer = TOKEN_ANSWER if wants_token(question) else answer_tokens
    rates = rates if rates is not None else current_rates(backend)

    def made(strategy: str, calls: int, prompt: int, completion: int, note: str = "",
             *, window: int, together: int = 1):
        """``window``: tokens in the window while a call writes; ``together``: calls decoded
        side by side (their written tokens share the time)."""
        seconds = None
        if rates:
            writing = rates.seconds(0, 0, completion, window) / max(1, together)
            seconds = round(rates.seconds(calls, prompt, 0) + writing, 1)
        return Estimate(strategy, calls, prompt, completion, seconds, note)

    out = []
    if total <= budget:
        out.append(made("full", 1, total + overhead, answer_tokens, "reads every token once",
                        window=total + overhead))
    passages = min(total, DEFAULT_CONTEXT_TOKENS)
    out.append(made("rag", 1, passages + overhead, answer,
                    f"reads the {passages:,} tokens of the best passages",
                    window=passages + overhead))
    segments = max(1, math.ceil(total / DEFAULT_SEGMENT_TOKENS))
    scored = segments if segments <= FAST_PATH_SEGMENTS else min(segments, FAST_PATH_CANDIDATES)
    question_tokens = backend.count_tokens(question)
    out.append(made("xl3m", math.ceil(scored / concurrency(backend)) + 1,
                    scored * (DEFAULT_SEGMENT_TOKENS + question_tokens)
                    + DEFAULT_KEY_SENTENCES * SENTENCE_TOKENS + overhead, answer,
                    f"scores {scored:,} of {segments:,} segments",
                    window=DEFAULT_KEY_SENTENCES * SENTENCE_TOKENS + overhead))
    chunk = max(128, budget - 2 * DEFAULT_CU_TOKENS - EVIDENCE_ROOM)
    chunks = max(1, math.ceil(total / chunk))
    out.append(made("coa", chunks + 1,
                    total + chunks * (overhead + DEFAULT_CU_TOKENS) + overhead
                    + DEFAULT_CU_TOKENS, chunks * DEFAULT_CU_TOKENS + answer_tokens,
                    f"{chunks:,} workers read ~{chunk:,} tokens each, then a manager answers",
                    window=chunk + overhead))
    # mapreduce: every chunk mapped to a note at once (the backend's concurrency), the
    # notes collapsed in groups that fit, then one reduce.
    map_chunk = max(MIN_CHUNK_TOKENS, budget + answer_tokens - DEFAULT_NOTE_TOKENS)
    maps = max(1, math.ceil(total / map_chunk))
    notes = maps * DEFAULT_NOTE_TOKENS
    collapses = math.ceil(notes / budget) if notes > budget else 0
    out.append(made("mapreduce", maps + collapses + 1,
                    total + (maps + collapses + 1) * overhead + notes
                    + collapses * DEFAULT_NOTE_TOKENS, notes + collapses * DEFAULT_NOTE_TOKENS
                    + answer_tokens,
                    f"{maps:,} chunks of ~{map_chunk:,} tokens read at once, then notes "
                    "merged and answered", window=map_chunk + overhead,
                    together=min(maps, concurrency(backend))))
    return Preview(total, budget, decision.strategy, decision.reason, out, rates)


__all__ = ["Estimate", "Preview", "preview"]
