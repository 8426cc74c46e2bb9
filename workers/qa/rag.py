"""``rag``: the best retrieved passages that fit the budget, in document order, cited."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .answering import final_answer
from .budget import content_budget
from .citations import locate, make_citation
from .compression import compressed_blocks
from .extract import wants_token
from .prompts import document_block
from .retrieval import matched_sentences
from .run import Run
from .scoring import Span, lexical_sentences
from .types import Citation, Passage, Retriever, SourceDocument

DEFAULT_TOP_K = 20
# A small model answers better from a short context; the window is the hard limit.
DEFAULT_CONTEXT_TOKENS = 2048


def _as_span(passage: Passage, docs: Mapping[object, SourceDocument]) -> Span | None:
    """The passage as an exact span of its document (re-located if its offsets are stale)."""
    doc = docs.get(passage.document_id)
    if doc is None:
        return None
    if passage.end > passage.start and doc.span(passage.start, passage.end) == passage.text:
        return Span(doc, passage.start, passage.end)  # read: the passage, not the document
    found = locate(passage.text, doc.text)
    return Span(doc, *found) if found else None


def _matched_sentences(
    passages: Sequence[Passage], used: Sequence[tuple[Span, float]],
    docs: Mapping[object, SourceDocument],
) -> list[Span]:
    """The index's matched sentences (``matched_sentences``) inside the used passages."""
    out: list[Span] = []
    for document_id, start, end in matched_sentences(passages):
        doc = docs.get(document_id)
        if doc is not None and any(
            u.document is doc and u.start <= start and end <= u.end for u, _ in used
        ):
            out.append(Span(doc, start, end))
    return out


def answer_rag(
    run: Run,
    question: str,
    documents: Sequence[SourceDocument],
    retrieve: Retriever,
    *,
    history: Sequence[Mapping[str, str]] | None = None,
    answer_tokens: int = 128,
    top_k: int = DEFAULT_TOP_K,
    context_tokens: int = DEFAULT_CONTEXT_TOKENS,
) -> tuple[str, list[Citation]]:
    docs = {doc.id: doc for doc in documents}
    run.check(0, 2, "rag: retrieving")
    with run.step("retrieve", top_k=top_k) as step:
        budget = min(
            context_tokens, content_budget(run.backend, question, history, answer_tokens, blocks=4)
        )
        squeeze = budget
        if run.compress_ratio:  # read more, compress back into the budget
            budget = int(budget * run.compress_ratio)
            top_k = int(top_k * run.compress_ratio)
        passages = retrieve(question, top_k)
        ranked: list[tuple[Span, float]] = []
        dropped = 0
        for p in sorted(passages, key=lambda p: -p.score):
            span = _as_span(p, docs)
            if span is None:
                dropped += 1  # not a span of a document we were given: never cite it
                continue
            ranked.append((span, p.score))
        used: list[tuple[Span, float]] = []
        total = 0
        for span, score in ranked:
            cost = run.count(span.text) + 16  # + its tags
            if total + cost > budget:
                continue
            used.append((span, score))
            total += cost
        step.notes.update(
            {
                "retrieved": len(passages),
                "dropped_not_in_documents": dropped,
                "used": [
                    {"document_id": s.document.id, "start": s.start, "end": s.end, "score": sc}
                    for s, sc in used
                ],
                "context_tokens": total,
                "budget": budget,
            }
        )
    run.check(1, 2, "rag: answering")
    order = {doc.id: i for i, doc in enumerate(documents)}
    in_doc_order = sorted(used, key=lambda x: (order[x[0].document.id], x[0].start))
    if run.compress_ratio and total > squeeze:
        blocks = compressed_blocks(run, question, [s for s, _ in in_doc_order], squeeze)
    else:
        blocks = [
            document_block(s.document.id, s.document.title, s.text, part=f"{s.start}-{s.end}")
            for s, _ in in_doc_order
        ]
    with run.step("answer", passages=len(used)) as step:
        final = final_answer(
            run,
            question,
            blocks,
            documents,
            history=history,
            max_tokens=answer_tokens,
            # What a key is extracted from: the sentences the index matched in the passages
            # used (its sentence and answer-type arms), then their sentences by BM25.
            evidence=_matched_sentences(passages, used, docs)
            + lexical_sentences(question, [s for s, _ in used])
            if wants_token(question)
            else [s for s, _ in used],
        )
        step.notes.update(final.notes)
    citations = final.citations
    if not citations:
        # Nothing matched the answer: cite the passages the answer was written from.
        citations = [make_citation(s.document, s.start, s.end) for s, _ in used[:3]]
    return final.text, citations
