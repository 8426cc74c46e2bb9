"""``answer()``: the one entry point the app calls (a Celery task adapter or a view)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from workers.llm import get_backend
from workers.llm.base import LLMBackend
from workers.progress import Progress
from workers.writing.length import requested_words

from .auto import choose
from .budget import DEFAULT_ANSWER_TOKENS, check_question, content_budget, fit_history
from .citations import is_valid
from .cleantext import MarkupFilter, clean_answer
from .coa import answer_coa
from .full import answer_full
from .grounding import check as check_grounding
from .grounding import check_level
from .mapreduce import answer_mapreduce, unread_notice
from .options import parse_options
from .rag import answer_rag
from .retrieval import InMemoryRetriever
from .run import Run
from .types import Answer, Retriever, SourceDocument, TokenCallback
from .xl3m import answer_xl3m


def _documents(documents: Sequence[SourceDocument | Mapping[str, Any]]) -> list[SourceDocument]:
    out = []
    for d in documents:
        if isinstance(d, Mapping):
            d = SourceDocument(d["id"], str(d.get("title", "")), str(d["text"]))
        if not isinstance(d, SourceDocument):
            raise TypeError(f"expected SourceDocument, got {type(d).__name__}")
        out.append(d)
    if not out:
        raise ValueError("no documents to answer from")
    if len({d.id for d in out}) != len(out):
        raise ValueError("document ids must be unique (citations refer to them)")
    return out


def answer(
    question: str,
    documents: Sequence[SourceDocument | Mapping[str, Any]],
    strategy: str = "auto",
    *,
    backend: LLMBackend | None = None,
    retrieve: Retriever | None = None,
    progress: Progress | None = None,
    on_token: TokenCallback | None = None,
    history: Sequence[Mapping[str, str]] | None = None,
    answer_tokens: int = DEFAULT_ANSWER_TOKENS,
    options: Mapping[str, Any] | None = None,
    grounding: str | None = None,
) -> Answer:
    """Answer ``question`` from ``documents`` with citations and a trace.

    ``strategy``: auto | rag | coa | mapreduce | xl3m | full. ``options``: the strategy's options
    (``options.py``: one typed definition per strategy, e.g. ``{"chunk_tokens": 2000}`` for
    coa, ``{"segment_tokens": 512}`` for xl3m, ``{"dense": True}`` for rag's in-memory
    retriever) and, for every strategy, ``{"compress": 3}``: read 3× more text,
    SCOPE-compressed into the same budget. Raises ``ValueError`` for an empty question or a
    bad option (``UnknownStrategy`` for an unknown strategy), ``QuestionTooLong`` /
    ``DocumentsTooLong`` (both ``ContextOverflow``) when it cannot fit, ``Cancelled`` when
    ``progress`` raises it. ``grounding``: strict | normal (default) | off, how strictly the
    answer is checked against its citations before it is returned (``grounding.py``); the
    answer text (and every streamed delta) is cleaned of prompt markup (``cleantext.py``).
    """
    question = check_question(question, max_chars=None)
    level = check_level(grounding)
    parsed = parse_options(strategy, options)  # UnknownStrategy, or a bad option
    docs = _documents(documents)
    if backend is None:
        backend = get_backend()
    opts = parsed.strategy_kwargs()  # none for auto: the chosen strategy's defaults
    stream = MarkupFilter(on_token) if on_token is not None else None
    run = Run(backend, progress, stream)
    run.target_words = requested_words(question)
    run.compress_ratio = parsed.compress
    turns = fit_history(backend, history)
    with run.step("prepare", question_chars=len(question), documents=len(docs)) as step:
        content_budget(backend, question, turns, answer_tokens)  # early QuestionTooLong
        check_question(question)  # within the window, still too long for a question
        step.notes["history_turns"] = {"given": len(history or []), "kept": len(turns)}
        if run.target_words:
            step.notes["length_asked"] = run.target_words
    reason = f"strategy {strategy!r} requested"
    if strategy == "auto":
        with run.step("choose") as step:
            decision = choose(
                question,
                docs,
                backend,
                history=turns,
                answer_tokens=answer_tokens,
                has_retriever=retrieve is not None,
            )
            strategy, reason = decision.strategy, decision.reason
            step.notes.update({"strategy": strategy, "reason": reason, **decision.facts})
    common: dict[str, Any] = {"history": turns, "answer_tokens": answer_tokens}
    if strategy == "full":
        text, citations = answer_full(run, question, docs, **common, **opts)
    elif strategy == "rag":
        dense = opts.pop("dense", False)  # the in-memory retriever's, not answer_rag's
        if retrieve is None:
            retrieve = InMemoryRetriever(docs, dense=dense)
        text, citations = answer_rag(run, question, docs, retrieve, **common, **opts)
    elif strategy == "coa":
        text, citations = answer_coa(run, question, docs, retrieve=retrieve, **common, **opts)
    elif strategy == "mapreduce":
        text, citations = answer_mapreduce(run, question, docs, **common, **opts)
    else:
        text, citations = answer_xl3m(run, question, docs, retrieve=retrieve, **common, **opts)
    # Never hand out a citation that is not an exact span of a given document.
    citations = [c for c in citations if is_valid(c, docs)]
    if stream is not None:
        stream.close()
    with run.step("grounding", strictness=level) as step:
        verdict = check_grounding(question, clean_answer(text), citations, docs, level)
        step.notes.update(verdict.notes)
    run.check(1, 1, "done")
    summary = {k: v for k, v in verdict.notes.items() if k not in ("draft", "claims")}
    text = verdict.text
    notice = unread_notice(run.steps)  # after grounding: it is about the reading, not the text
    if notice:
        text = f"{text} {notice}"
        if on_token is not None:
            on_token(" " + notice)
    return Answer(text, verdict.citations, run.steps, run.usage, strategy, reason,
                  grounded=verdict.grounded, abstained=verdict.abstained, grounding=summary,
                  shortened=run.shortened)
