"""``full``: every document in one prompt, when they fit the window with room for the answer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .answering import final_answer
from .budget import content_budget
from .extract import wants_token
from .prompts import document_block
from .run import Run
from .scoring import Span, lexical_sentences
from .types import Citation, DocumentsTooLong, SourceDocument


def documents_tokens(run: Run, documents: Sequence[SourceDocument]) -> int:
    """The documents' tokens: the counts stored at ingest where there are (as `auto` uses
    them), else counted now. The prompt is counted whole before it is sent anyway, so a
    count gone stale (another model since) still cannot overflow the window."""
    return sum(doc.tokens if doc.tokens is not None else run.count(doc.text)
               for doc in documents)


def lexical_evidence(question: str, documents: Sequence[SourceDocument], k: int = 5) -> list[Span]:
    """Sentences ranked by BM25 (cheap; used to extract a key the model did not copy)."""
    return lexical_sentences(question, [Span(d, 0, len(d.text)) for d in documents], k)


def answer_full(
    run: Run,
    question: str,
    documents: Sequence[SourceDocument],
    *,
    history: Sequence[Mapping[str, str]] | None = None,
    answer_tokens: int = 128,
) -> tuple[str, list[Citation]]:
    run.check(0, 2, "full: counting tokens")
    with run.step("budget", documents=len(documents)) as step:
        budget = content_budget(
            run.backend, question, history, answer_tokens, blocks=max(1, len(documents))
        )
        needed = documents_tokens(run, documents)
        step.notes.update({"document_tokens": needed, "budget": budget})
        if needed > budget:
            raise DocumentsTooLong(
                needed,
                run.backend.context_window,
                answer_tokens,
                message=(
                    f"the documents take {needed} tokens but only {budget} of the "
                    f"{run.backend.context_window}-token window are left after the question, "
                    f"instructions and {answer_tokens} tokens for the answer: use strategy "
                    "'coa', 'xl3m' or 'rag' (or 'auto')"
                ),
            )
    run.check(1, 2, "full: answering")
    blocks = [document_block(doc.id, doc.title, doc.text) for doc in documents]
    evidence = lexical_evidence(question, documents) if wants_token(question) else None
    with run.step("answer", context_tokens=needed) as step:
        final = final_answer(
            run,
            question,
            blocks,
            documents,
            history=history,
            max_tokens=answer_tokens,
            evidence=evidence,
        )
        step.notes.update(final.notes)
    return final.text, final.citations
