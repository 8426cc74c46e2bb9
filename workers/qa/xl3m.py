"""``xl3m``: segment-wise relevance by the question's likelihood, then a short key context.

1. Cut the documents into segments so that segment + question fits the window.
2. Score each (segment, question) pair with one forward pass: the mean NLL of the
   question tokens given the segment (batched; lower = more relevant).
3. Keep the best segments within the budget, in their original order.
4. Narrow: the same score per sentence inside the kept segments; the top sentences are
   the key context (a 135M model copies from a few sentences far better than from 1k
   tokens) and the evidence the answer is extracted from and cited with.
Fast path for very long inputs: BM25 + dense pre-filter of the segments, XL3M scoring of
the top candidates only; the trace says which path ran.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import groupby

from workers.documents.chunking import segments

from .answering import final_answer
from .budget import content_budget
from .prompts import document_block, scoring_continuation
from .run import Run
from .scoring import Span, prefilter, question_nll, rank_spans, sentences_in
from .types import Citation, QuestionTooLong, SourceDocument

DEFAULT_SEGMENT_TOKENS = 1024  # the size measured in DESIGN.md (needle ranked 20/20)
DEFAULT_KEEP_SEGMENTS = 2
DEFAULT_KEY_SENTENCES = 5
FAST_PATH_SEGMENTS = 48  # more segments than this (~48k tokens): pre-filter first
FAST_PATH_CANDIDATES = 12
SCORE_BATCH = 4


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
) -> tuple[str, list[Citation]]:
    content_budget(run.backend, question, history, answer_tokens)  # refuses an over-long question
    run.check(0, 1, "xl3m: segmenting")
    with run.step("segment", segment_tokens=segment_tokens) as step:
        segs = split_segments(run, question, documents, segment_tokens)
        use_fast = len(segs) > FAST_PATH_SEGMENTS if fast_path is None else fast_path
        step.notes.update({"segments": len(segs), "path": "fast" if use_fast else "full-scan"})

    to_score = list(range(len(segs)))
    if use_fast and len(segs) > candidates:
        with run.step("prefilter", candidates=candidates, segments=len(segs)) as step:
            to_score, info = prefilter(question, [s.text for s in segs], candidates, dense=dense)
            step.notes.update(info)

    batches = [to_score[i : i + SCORE_BATCH] for i in range(0, len(to_score), SCORE_BATCH)]
    total = len(batches) + 2
    scores: dict[int, float] = {}
    with run.step("score_segments", scored=len(to_score), batch=SCORE_BATCH) as step:
        for b, batch in enumerate(batches):
            run.check(
                b,
                total,
                f"xl3m: scoring segments {b * SCORE_BATCH + 1}-"
                f"{b * SCORE_BATCH + len(batch)} of {len(to_score)}",
            )
            nlls = question_nll(run, question, [segs[i].text for i in batch], SCORE_BATCH)
            scores.update(zip(batch, nlls, strict=True))
        ranking = sorted(scores, key=lambda i: (scores[i], i))
        kept = sorted(ranking[: max(1, keep_segments)])
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
        ranked = rank_spans(run, question, sentences)
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
