"""``xl3m``: segment-wise relevance by the question's likelihood, then a short key context.

1. Cut the documents into segments so that segment + question fits the window.
2. Score each (segment, question) pair with one forward pass: the mean NLL of the
   question tokens given the segment (batched; lower = more relevant).
3. Keep the best segments within the budget, in their original order.
4. Narrow: the same score per sentence inside the kept segments (pre-filtered by BM25 +
   dense to ``NARROW_CANDIDATES``); the top sentences are
   the key context (a 135M model copies from a few sentences far better than from 1k
   tokens) and the evidence the answer is extracted from and cited with.
Fast path for very long inputs: a pre-filter picks candidate segments, XL3M scores those
only; the trace says which path ran. With a search index (``retrieve``: the app's pgvector +
full text + sentence vectors, built at ingest) the candidates are the segments of its best
passages (matched at the sentence level, read at the passage level), so a 1M-token question
costs a search plus ~12 segment passes; without one, the same small-to-big retrieval is built
in memory (embedding 1M tokens costs minutes on 2 cores).

A second judge (``dense=True``, the default): the embedder's similarity. Measured here, the
135M model's question likelihood ranks a needle that repeats the question's words first,
but not a *paraphrased* one (rank 2-3 of 9 at 8k), which the sentence embedder ranks first
of ~330 sentences. So the segment holding the embedder's best sentence is kept besides
the likelihood's best, and sentences are ranked by fusing both rankings (RRF).
``dense=False`` is plain XL3M.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import groupby

from workers.documents.chunking import segments
from workers.llm.base import concurrency

from .answering import final_answer
from .budget import content_budget
from .compression import compressed_blocks
from .prompts import document_block, scoring_continuation
from .retrieval import InMemoryRetriever
from .run import Run
from .scoring import (
    Span,
    dense_best_region,
    fuse_with_dense,
    index_ranking,
    prefilter,
    prefilter_by_index,
    prefilter_sentences,
    question_nll,
    rank_spans,
    sentences_in,
)
from .types import Citation, Passage, QuestionTooLong, Retriever, SourceDocument

DEFAULT_SEGMENT_TOKENS = 1024  # the size measured in DESIGN.md (needle ranked 20/20)
DEFAULT_KEEP_SEGMENTS = 2
DEFAULT_KEY_SENTENCES = 5
FAST_PATH_SEGMENTS = 48  # more segments than this (~48k tokens): pre-filter first
FAST_PATH_CANDIDATES = 12
NARROW_CANDIDATES = 24  # sentences of the kept segments scored by the model
INDEX_KEEP = 2  # segments of the index's best sentences kept besides the likelihood's best
ANSWER_CONTEXT_TOKENS = 2048  # with compression: the compressed context's size


def split_segments(
    run: Run, question: str, documents: Sequence[SourceDocument], segment_tokens: int
) -> list[Span]:
    window = run.backend.context_window
    question_tokens = run.count(scoring_continuation(question))
    budget = min(segment_tokens, window - question_tokens - 8)
    if budget < 32:
        raise QuestionTooLong(
            question_tokens,
            window,
            0,
            message=f"the question takes {question_tokens} tokens of the {window}-token window: "
            "no room is left for a segment",
        )
    return [
        Span(doc, c.start, c.end)
        for doc in documents
        for c in segments(doc.text, budget, run.count)
    ]


def answer_xl3m(
    run: Run,
    question: str,
    documents: Sequence[SourceDocument],
    *,
    history: Sequence[Mapping[str, str]] | None = None,
    answer_tokens: int = 128,
    segment_tokens: int = DEFAULT_SEGMENT_TOKENS,
    keep_segments: int = DEFAULT_KEEP_SEGMENTS,
    key_sentences: int = DEFAULT_KEY_SENTENCES,
    fast_path: bool | None = None,
    candidates: int = FAST_PATH_CANDIDATES,
    dense: bool = True,
    retrieve: Retriever | None = None,
) -> tuple[str, list[Citation]]:
    content_budget(run.backend, question, history, answer_tokens)  # refuses an over-long question
    run.check(0, 1, "xl3m: segmenting")
    with run.step("segment", segment_tokens=segment_tokens) as step:
        segs = split_segments(run, question, documents, segment_tokens)
        use_fast = len(segs) > FAST_PATH_SEGMENTS if fast_path is None else fast_path
        step.notes.update({"segments": len(segs), "path": "fast" if use_fast else "full-scan"})

    to_score = list(range(len(segs)))
    if retrieve is None and dense and use_fast and len(segs) > candidates:
        # No stored index: build one in memory (one embedding pass over the text, as the
        # embedder's pre-filter of the segments cost before).
        retrieve = InMemoryRetriever(documents, dense=True)
    # The index's passages (fused passage, sentence and answer-type rankings: the stored
    # sentence vectors, nothing embedded here) and the segments holding its best sentences.
    passages: list[Passage] = retrieve(question, candidates * 2) if retrieve else []
    fine = index_ranking(segs, passages)
    if use_fast and len(segs) > candidates:
        with run.step("prefilter", candidates=candidates, segments=len(segs)) as step:
            if passages:
                to_score, info = prefilter_by_index(question, segs, candidates, passages)
            else:
                to_score, info = prefilter(question, [s.text for s in segs], candidates,
                                           dense=False)
            step.notes.update(info)
    # As many segments a call as the backend runs at once (its one concurrency setting):
    # vLLM's continuous batching sees them together.
    size = concurrency(run.backend)
    batches = [to_score[i : i + size] for i in range(0, len(to_score), size)]
    total = len(batches) + 2
    scores: dict[int, float] = {}
    with run.step("score_segments", scored=len(to_score), batch=size) as step:
        for b, batch in enumerate(batches):
            run.check(
                b,
                total,
                f"xl3m: scoring segments {b * size + 1}-"
                f"{b * size + len(batch)} of {len(to_score)}",
            )
            nlls = question_nll(run, question, [segs[i].text for i in batch], size)
            scores.update(zip(batch, nlls, strict=True))
        ranking = sorted(scores, key=lambda i: (scores[i], i))
        kept_set = set(ranking[: max(1, keep_segments)])
        # Without an index, the embedder's best sentence of the scored segments stands in.
        best = (
            dense_best_region(question, [segs[i] for i in to_score])
            if dense and retrieve is None
            else None
        )
        if best is not None:
            kept_set.add(to_score[best])
            step.notes["dense_best"] = to_score[best]
        # The segments of the index's best sentences (its sentence and answer-type arms)
        # ride along: the likelihood misses a paraphrase.
        index_best = [i for i in fine if i in scores][:INDEX_KEEP]
        if index_best:
            kept_set.update(index_best)
            step.notes["index_best"] = index_best
        kept = sorted(kept_set)
        step.notes.update(
            {
                "scores": [
                    {
                        "segment": i,
                        "document_id": segs[i].document.id,
                        "start": segs[i].start,
                        "end": segs[i].end,
                        "mean_nll": round(scores[i], 4),
                    }
                    for i in sorted(scores)
                ],
                "ranking": ranking,
                "kept": kept,
            }
        )

    run.check(len(batches), total, "xl3m: scoring sentences of the kept segments")
    with run.step("narrow", kept_segments=kept) as step:
        sentences = sentences_in([segs[i] for i in kept])
        step.notes["sentences_in_kept"] = len(sentences)
        if len(sentences) > NARROW_CANDIDATES:  # cheap pre-filter, then the model's score
            keep, info = prefilter_sentences(
                question, sentences, NARROW_CANDIDATES, dense, passages=passages
            )
            step.notes["prefilter"] = info["method"]
            sentences = [sentences[i] for i in keep]
        ranked = rank_spans(run, question, sentences)
        if dense:
            ranked = fuse_with_dense(question, ranked)
            step.notes["ranking"] = "question likelihood + embedder (rrf)"
        top = ranked[: max(1, key_sentences)]
        step.notes["top_sentences"] = [
            {
                "document_id": r.span.document.id,
                "start": r.span.start,
                "end": r.span.end,
                "mean_nll": round(r.score, 4),
            }
            for r in top
        ]
        step.notes["sentences_scored"] = len(sentences)

    run.check(len(batches) + 1, total, "xl3m: answering")
    if run.compress_ratio:
        # Answer from the best segments themselves (ratio× the answer budget of text),
        # compressed into that budget, instead of a handful of sentences.
        budget = min(
            ANSWER_CONTEXT_TOKENS, content_budget(run.backend, question, history, answer_tokens)
        )
        room = int(budget * run.compress_ratio)
        chosen, used = [], 0
        for i in ranking:
            used += run.count(segs[i].text)
            chosen.append(i)
            if used >= room:
                break
        blocks = compressed_blocks(run, question, [segs[i] for i in sorted(chosen)], budget)
    else:
        in_order = sorted(top, key=lambda r: r.position)
        blocks = [
            document_block(doc.id, doc.title, " … ".join(r.span.text for r in group))
            for doc, group in (
                (k, list(g)) for k, g in groupby(in_order, key=lambda r: r.span.document)
            )
        ]
    with run.step("answer", key_sentences=len(top)) as step:
        final = final_answer(
            run,
            question,
            blocks,
            documents,
            history=history,
            max_tokens=answer_tokens,
            evidence=[r.span for r in ranked],
        )
        step.notes.update(final.notes)
    return final.text, final.citations
