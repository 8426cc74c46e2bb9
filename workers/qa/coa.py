"""``coa`` (Chain-of-Agents): workers read window-sized chunks in order, each passing a
communication unit (CU) to the next; a manager answers from the last CU.

The CU is the worker's notes plus an evidence list the engine maintains: in each chunk the
sentences are pre-filtered (BM25 + the search index's matched sentences, or the embedder
without an index, + the answer-type arm) and scored by the question's likelihood (XL3M's
score, at sentence level); the best few so far are carried verbatim. A 135M worker often
loses or garbles a key, so the evidence list is what makes the chain reliable; quotes the
workers write are verified against their chunk and cited only if found.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from workers.documents.chunking import segments
from workers.llm.base import concurrency

from .answer_types import question_kinds, typed_key
from .answering import final_answer
from .budget import content_budget
from .citations import dedupe, locate, make_citation, quoted, sentence_units
from .compression import compressed_blocks
from .prompts import MANAGER_INSTRUCTIONS, document_block, notes_block, worker_messages
from .questions import wants_whole_document
from .retrieval import matched_sentences
from .run import Run
from .scoring import (
    ScoredSpan,
    Span,
    dense_scores,
    fuse_with_dense,
    prefilter_sentences,
    rank_spans,
)
from .types import Citation, QuestionTooLong, Retriever, SourceDocument

DEFAULT_CU_TOKENS = 128
EVIDENCE_KEEP = 3  # evidence sentences carried in the CU
EVIDENCE_CANDIDATES = 8  # sentences per chunk scored by the model after the pre-filter
INDEX_PASSAGES = 20  # passages asked of the search index (their matched sentences)
# tokens reserved for them, the embedder's closest and the best by answer type
EVIDENCE_ROOM = 96 * (EVIDENCE_KEEP + 2)


@dataclass
class _Chunk:
    document: SourceDocument
    start: int
    end: int
    tokens: int


def _chunks(
    run: Run, question: str, documents: Sequence[SourceDocument], cu_tokens: int, cap: int | None
) -> tuple[list[_Chunk], int]:
    empty = worker_messages(question, "x", document_block("x", "", ""))
    overhead = run.count(empty)
    window = run.backend.context_window
    # window − instructions/question − the incoming CU (notes + evidence) − the new CU
    budget = window - overhead - cu_tokens - EVIDENCE_ROOM - cu_tokens
    if budget < 128:
        raise QuestionTooLong(
            overhead,
            window,
            cu_tokens,
            message=f"the question leaves {max(budget, 0)} tokens "
            f"of the {window}-token window for a chunk: shorten it",
        )
    if cap:
        budget = min(budget, cap)
    if run.compress_ratio:  # each worker reads ratio× more, compressed into its budget
        budget = int(budget * run.compress_ratio)
    out = [
        _Chunk(doc, c.start, c.end, c.tokens)
        for doc in documents
        for c in segments(doc.text, budget, run.count)
    ]
    return out, budget


class _Evidence:
    """The evidence a chain carries: the best-scored sentences so far (lowest NLL), the
    closest to the question so far (the index's, else the embedder's: paraphrases, which
    the likelihood misses; see xl3m.py) and the closest one holding an answer of the
    question's kind (``answer_types``)."""

    def __init__(self, kinds) -> None:  # noqa: ANN001 - question_kinds' result
        self.kinds = kinds
        self.pool: list[ScoredSpan] = []
        self.read = 0  # sentences scored so far: positions in reading order
        self.closest: tuple[float, ScoredSpan] | None = None
        self.typed_best: tuple[tuple[int, float], ScoredSpan] | None = None

    def take(self, scored: Sequence[ScoredSpan], sims: Sequence[float | None] | None) -> None:
        """Add a chunk's scored sentences (with their closeness, if known)."""
        for j, s in enumerate(scored):
            e = ScoredSpan(s.span, s.score, self.read + s.position)
            self.pool.append(e)
            sim = sims[j] if sims is not None else None
            if sim is not None and (self.closest is None or sim > self.closest[0]):
                self.closest = (sim, e)
            key = typed_key(self.kinds, s.span.text, sim)
            if key is not None and (self.typed_best is None or key < self.typed_best[0]):
                self.typed_best = (key, e)
        self.read += len(scored)
        self.pool = sorted(self.pool, key=lambda e: (e.score, e.position))[:EVIDENCE_KEEP]
        for extra in (self.closest, self.typed_best):
            if extra is not None and extra[1] not in self.pool:
                self.pool.append(extra[1])


def _cu_text(notes: str, evidence: Sequence[ScoredSpan]) -> str:
    lines = [notes.strip() or "(no notes)"]
    if evidence:
        lines.append("Evidence (verbatim):")
        lines += [f'- "{e.span.text}"' for e in sorted(evidence, key=lambda e: e.position)]
    return "\n".join(lines)


def answer_coa(
    run: Run,
    question: str,
    documents: Sequence[SourceDocument],
    *,
    history: Sequence[Mapping[str, str]] | None = None,
    answer_tokens: int = 128,
    cu_tokens: int = DEFAULT_CU_TOKENS,
    chunk_tokens: int | None = None,
    evidence: bool | None = None,
    dense: bool = True,
    retrieve: Retriever | None = None,
) -> tuple[str, list[Citation]]:
    content_budget(run.backend, question, history, answer_tokens)  # refuses an over-long question
    summary = wants_whole_document(question)
    use_evidence = (not summary) if evidence is None else evidence
    run.check(0, 1, "coa: chunking")
    with run.step("chunk", cap=chunk_tokens) as step:
        chunks, budget = _chunks(run, question, documents, cu_tokens, chunk_tokens)
        step.notes.update(
            {"chunks": len(chunks), "chunk_budget": budget, "task": "summary" if summary else "qa"}
        )

    # With a search index, its matched sentences (stored vectors) stand for the embedder
    # in every chunk: nothing is embedded per question.
    passages = retrieve(question, INDEX_PASSAGES) if retrieve is not None and use_evidence else []
    matched = matched_sentences(passages)
    kinds = question_kinds(question)

    def closeness(span: Span) -> float | None:
        """How close the index put the sentence (higher is closer), None if not matched."""
        for rank, (doc_id, s, e) in enumerate(matched):
            if doc_id == span.document.id and span.start < e and s < span.end:
                return -float(rank)
        return None

    def scored(chunk: _Chunk) -> tuple[Run, tuple[list[ScoredSpan], list | None, dict]]:
        """The chunk's pre-filtered sentences scored by the question's likelihood, with their
        closeness: what the evidence takes from it. Independent of the chain's notes, so it
        may run beside the previous worker; in a run of its own (``Run.fork``) either way."""
        sub = run.fork()
        with sub.step("evidence"):
            units = [
                Span(chunk.document, s, e)
                for s, e in sentence_units(chunk.document.text, chunk.start, chunk.end)
            ]
            keep, info = prefilter_sentences(
                question, units, EVIDENCE_CANDIDATES, dense and not passages, passages
            )
            ranked = rank_spans(sub, question, [units[k] for k in keep])
            if passages:
                sims = [closeness(s.span) for s in ranked]
            elif dense:
                sims = dense_scores(question, [s.span.text for s in ranked])
            else:
                sims = None
        return sub, (ranked, sims, info)

    notes = ""
    evidence = _Evidence(kinds)
    quoted_citations: list[Citation] = []
    total = len(chunks) + 1
    # The next chunk's evidence does not depend on this worker's notes: where the backend
    # runs requests at once, it is scored while the worker writes (on vLLM the scoring's
    # prefills share the server's steps with the worker's decoding).
    beside = ThreadPoolExecutor(1) if use_evidence and concurrency(run.backend) > 1 else None
    upcoming: Future | None = None  # the next chunk's evidence, being scored beside
    try:
        for i, chunk in enumerate(chunks):
            run.check(i, total, f"coa: worker {i + 1} of {len(chunks)}")
            with run.step(
                "worker",
                chunk=i,
                document_id=chunk.document.id,
                start=chunk.start,
                end=chunk.end,
                tokens=chunk.tokens,
            ) as step:
                if use_evidence:
                    if upcoming is not None:
                        step.notes["evidence_beside"] = True  # scored during the last worker
                    sub, (ranked, sims, info) = upcoming.result() if upcoming else scored(chunk)
                    upcoming = None
                    run.absorb(sub)
                    evidence.take(ranked, sims)
                    step.notes["evidence_scores"] = [
                        {"start": s.span.start, "end": s.span.end, "mean_nll": round(s.score, 4)}
                        for s in ranked
                    ]
                    step.notes["prefilter"] = info.get("method")
                if beside is not None and i + 1 < len(chunks):
                    upcoming = beside.submit(scored, chunks[i + 1])
                text = chunk.document.text[chunk.start : chunk.end]
                if run.compress_ratio:
                    squeeze = int(budget / run.compress_ratio)
                    block = compressed_blocks(
                        run, question, [Span(chunk.document, chunk.start, chunk.end)], squeeze
                    )[0]
                else:
                    block = document_block(chunk.document.id, chunk.document.title, text,
                                           part=f"{i + 1} of {len(chunks)}")
                incoming = _cu_text(notes, evidence.pool if use_evidence else [])
                notes = run.chat(worker_messages(question, incoming, block, summary), cu_tokens)
                verified, unverified = [], []
                for q in quoted(notes):
                    span = locate(q, chunk.document.text, chunk.start, chunk.end)
                    if span:
                        verified.append(make_citation(chunk.document, *span))
                    else:
                        unverified.append(q)
                quoted_citations += verified
                step.notes.update(
                    {
                        "cu": notes,
                        "quotes_verified": len(verified),
                        "quotes_unverified": unverified,
                        "evidence_kept": [
                            {"start": e.span.start, "end": e.span.end} for e in evidence.pool
                        ],
                    }
                )
    finally:
        if beside is not None:  # a chain stopped early: what is being scored is let finish
            beside.shutdown(wait=True, cancel_futures=True)

    run.check(len(chunks), total, "coa: manager")
    pool = evidence.pool
    cu = _cu_text(notes, pool)
    with run.step("manager", cu_chars=len(cu)) as step:
        ranked_pool = fuse_with_dense(question, pool) if dense else pool
        evidence_spans = [e.span for e in ranked_pool] + [
            Span(next(d for d in documents if d.id == c.document_id), c.start, c.end)
            for c in dedupe(quoted_citations)
        ]
        final = final_answer(
            run,
            question,
            [notes_block(cu)],
            documents,
            history=history,
            max_tokens=answer_tokens,
            evidence=evidence_spans or None,
            instructions=MANAGER_INSTRUCTIONS,
        )
        step.notes.update(final.notes)
        step.notes["last_cu"] = cu
    return final.text, final.citations
