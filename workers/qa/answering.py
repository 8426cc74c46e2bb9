"""The final step every strategy shares: ask, then make the answer reliable, then cite.

A 135M model often fails to copy a key out of its context, so for key/number/code
questions the answer is extracted from the best-ranked evidence sentence (see
``extract``), and the citation is that sentence. Other answers keep the model's text and
cite the evidence that matches it best.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from workers.documents.lexical import BM25Index
from workers.writing.length import drop_unfinished

from .citations import dedupe, make_citation, supporting_citations
from .extract import candidates, extract_token, final_text, wants_token
from .prompts import answer_messages
from .run import Run
from .scoring import Span
from .types import Citation, SourceDocument

TOKEN_ANSWER_TOKENS = 32  # a key needs few tokens; a short draft is also a faster one


@dataclass
class Final:
    text: str
    citations: list[Citation]
    notes: dict[str, Any] = field(default_factory=dict)


def cite_spans(answer: str, question: str, spans: Sequence[Span], limit: int = 3) -> list[Citation]:
    """Spans containing the answer's key strings, else the best BM25 matches of the answer."""
    if not spans:
        return []
    keys = candidates(answer)
    hits = [
        s
        for s in spans
        if any(re.search(rf"(?<![\w]){re.escape(k)}(?![\w])", s.text) for k in keys)
    ]
    if not hits:
        index = BM25Index([s.text for s in spans])
        hits = [spans[i] for i, _ in index.search(f"{answer} {question}", k=limit)]
    if not hits:
        hits = list(spans[:1])
    return dedupe(make_citation(s.document, s.start, s.end) for s in hits)[:limit]


def whole_sentences(text: str) -> tuple[str, bool]:
    """``text`` without a trailing unfinished sentence, and whether anything was cut. A text
    with no finished sentence at all keeps its words and ends with an ellipsis."""
    kept = drop_unfinished(text)
    if kept == text:
        return text, False
    return (kept, True) if kept else (text.rstrip() + "…", True)


def final_answer(
    run: Run,
    question: str,
    blocks: Sequence[str],
    documents: Sequence[SourceDocument],
    *,
    history: Sequence[Mapping[str, str]] | None = None,
    max_tokens: int = 128,
    evidence: Sequence[Span] | None = None,
    instructions: str = "",
) -> Final:
    """Ask the model with ``blocks`` as context. ``evidence``: spans ranked best first (the
    extraction source and citation pool); None → cite from the documents' sentences."""
    messages = answer_messages(question, blocks, history, instructions)
    if wants_token(question) and evidence:
        draft = run.chat(messages, max_tokens=min(max_tokens, TOKEN_ANSWER_TOKENS))
        extraction = extract_token(question, [s.text for s in evidence], draft)
        text = final_text(draft, extraction)
        run.emit(text)
        notes: dict[str, Any] = {"draft": draft, "extracted": None}
        if extraction is not None:
            notes["extracted"] = {
                "value": extraction.value,
                "sentence_rank": extraction.sentence_rank,
                "model_agreed": extraction.agreed_with_model,
            }
            best = evidence[extraction.sentence_rank]
            citations = [make_citation(best.document, best.start, best.end)]
            return Final(text, citations, notes)
        return Final(text, cite_spans(text, question, evidence), notes)
    notes = {}
    if run.target_words:
        text, notes["length"] = run.chat_to_length(messages, run.target_words)
    else:
        run.last_finish = None
        text = run.chat_streamed(messages, max_tokens=max_tokens)
        if run.last_finish == "length":  # out of room mid-sentence: end at the last full one
            text, run.shortened = whole_sentences(text)
    if evidence:
        citations = cite_spans(text, question, evidence)
    else:
        citations = supporting_citations(text, question, documents)
    return Final(text, citations, {"draft": text, **notes})
