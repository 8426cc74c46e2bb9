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
from workers.writing.length import RepetitionGuard, drop_unfinished, sentences

from .citations import dedupe, make_citation, supporting_citations
from .extract import candidates, extract_token, final_text, wants_token
from .prompts import answer_messages
from .run import Run
from .scoring import Span
from .types import Citation, SourceDocument

TOKEN_ANSWER_TOKENS = 32  # a key needs few tokens; a short draft is also a faster one
# A run of 2 to LOOP_PHRASE_WORDS words said LOOP_COPIES times in a row is a small model
# looping ("of a tamely ramified torus of a tamely ramified torus of …"), not emphasis.
LOOP_COPIES = 3
LOOP_PHRASE_WORDS = 8
_ANSWER_WORD = re.compile(r"[^\W_]+")


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


def _loop_cut(sentence: str) -> int | None:
    """Where ``sentence`` starts saying a phrase again that it has just said, when it then
    says it LOOP_COPIES times in a row; None if it does not loop."""
    found = list(_ANSWER_WORD.finditer(sentence))
    words = [m.group().lower() for m in found]
    for i in range(len(words)):
        for n in range(2, LOOP_PHRASE_WORDS + 1):
            if i + LOOP_COPIES * n > len(words):
                break
            phrase = words[i:i + n]
            if all(words[i + k * n:i + (k + 1) * n] == phrase for k in range(1, LOOP_COPIES)):
                return found[i + n].start()
    return None


def without_repeats(text: str) -> tuple[str, int]:
    """``text`` without the sentences it already said (exactly or nearly, as the writer's
    ``RepetitionGuard`` judges) and without a looping phrase: the first time it is said is
    kept, the sentence ends there with an ellipsis and nothing after it is kept (a model in a
    loop rarely comes back to sense). Returns the text and how many of its sentences were
    dropped or cut; the text is unchanged when nothing repeats."""
    parts = sentences(text)
    guard, kept, intact = RepetitionGuard(), [], 0
    for sentence in parts:
        loop = _loop_cut(sentence)
        if loop is not None:
            head = sentence[:loop].rstrip().rstrip(",;:-–—").rstrip()
            if head and guard.accept(head):
                kept.append(head + "…")
            break
        if guard.accept(sentence):
            kept.append(sentence)
            intact += 1
    if intact == len(parts):
        return text, 0
    return "".join(kept).strip(), len(parts) - intact


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
        text, repeats = without_repeats(text)
        if repeats:
            notes["repeats_cut"] = repeats
    if evidence:
        citations = cite_spans(text, question, evidence)
    else:
        citations = supporting_citations(text, question, documents)
    return Final(text, citations, {"draft": text, **notes})
