"""SCOPE: chunk semantically, allocate a dynamic ratio, rewrite with keywords, balance."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from workers.llm.base import LLMBackend, Usage
from workers.progress import Progress

from . import keywords as kw
from .allocation import allocate
from .balance import Piece, balance
from .fitting import fit
from .outliers import handle_outliers
from .relevance import anchor_vector, chunk_relevance
from .rewrite import Request, rewrite_round
from .segmenting import neighbour_similarities, semantic_segments, split_sentences
from .types import ChunkTrace

Counter = Callable[[str], int]


def _chunks(
    text: str,
    count: Counter,
    embedder: Any,
    question: str | None,
    min_tokens: int,
    max_tokens: int,
) -> tuple[list[tuple[int, int]], list[float], list[list[float]]]:
    """Chunk spans, chunk relevance, and the relevance of each chunk's sentences."""
    sentences = split_sentences(text, count, max_tokens)
    vectors = np.asarray(embedder.embed([s.text for s in sentences]), dtype=np.float32)
    q = None
    if question:
        q = np.asarray(embedder.embed([question]), dtype=np.float32)[0]
    sims = neighbour_similarities(vectors)
    segments = handle_outliers(
        semantic_segments(sims), sentences, vectors, sims, min_tokens, max_tokens
    )
    anchor = anchor_vector(vectors, q)
    relevance = chunk_relevance(vectors, segments, anchor)
    sentence_scores = (vectors @ anchor).tolist()
    spans = [(sentences[s.first].start, sentences[s.last - 1].end) for s in segments]
    scores = [sentence_scores[s.first : s.last] for s in segments]
    return spans, relevance, scores


def _keepable(
    original: str, rare: Sequence[str], budget: int, *, count: Counter, scores: Sequence[float]
) -> list[str]:
    """The chunk's keywords, most important first, as many as its budget can carry: a
    keyword joins only if whole original sentences (or clauses) holding it and all those
    before it still fit the budget, so the promise made to the rewrite is one it can keep."""
    chosen: list[str] = []
    for keyword in kw.chunk_keywords(original, rare, budget, count):
        trial = [*chosen, keyword]
        if len(kw.kept(fit(original, budget, count, trial, scores), trial)) == len(trial):
            chosen = trial
    return chosen


def _valid(rewrite: str, original_tokens: int, count: Counter) -> str:
    """Why a rewrite is unusable, or ''."""
    if not rewrite.strip():
        return "came back empty"
    if count(rewrite) >= original_tokens:
        return "was not shorter than its input"
    return ""


def _rewrite(
    backend: LLMBackend,
    todo: Sequence[ChunkTrace],
    originals: Sequence[str],
    max_attempts: int,
    progress: Progress,
    steps: int,
) -> tuple[dict[int, str], dict[int, str], Usage]:
    """Rewrite rounds: every chunk once, then again those whose rewrite was unusable or lost
    keywords. Returns the best usable rewrite per chunk, why the last try failed, the usage."""
    count: Counter = backend.count_tokens
    usage = Usage()
    best: dict[int, str] = {}
    failures: dict[int, str] = {}
    pending = list(todo)
    for attempt in range(max_attempts):
        if not pending:
            break
        progress(
            attempt * len(todo), steps,
            f"Rewriting {len(pending)} chunk(s)" + (" again" if attempt else ""),
        )
        requests = [Request(t.index, originals[t.index], t.target_tokens, t.keywords)
                    for t in pending]
        rewrites, used = rewrite_round(backend, requests, retry=attempt > 0)
        usage = usage + used
        retry = []
        for t in pending:
            t.attempts += 1
            out = rewrites.get(t.index, "")
            why = _valid(out, t.original_tokens, count)
            if why:
                failures[t.index] = f"the rewrite {why}"
                retry.append(t)
                continue
            previous = best.get(t.index)
            if previous is None or len(kw.kept(out, t.keywords)) > len(
                kw.kept(previous, t.keywords)
            ):
                best[t.index] = out
            lost = [k for k in t.keywords if not kw.contains(out, k)]
            if lost:
                failures[t.index] = "the rewrite lost " + ", ".join(lost[:5])
                retry.append(t)
            else:
                failures.pop(t.index, None)
        pending = retry
    return best, failures, usage


def _choose(
    t: ChunkTrace,
    original: str,
    rewrite: str | None,
    failure: str | None,
    count: Counter,
    scores: Sequence[float],
) -> None:
    """Set the chunk's text: its rewrite fitted to the budget, or the extract of original
    sentences when that keeps more keywords or no rewrite was usable (kept verbatim)."""
    extract = fit(original, t.target_tokens, count, t.keywords, scores)
    if rewrite is None:
        t.text, t.outcome = extract, "verbatim"
        t.reason = (f"{failure or 'no rewrite'} after {t.attempts} attempt(s): "
                    "kept verbatim (whole original sentences")
        t.reason += ", trimmed to its budget)" if extract != original else ")"
        return
    fitted = fit(rewrite, t.target_tokens, count, t.keywords)
    if len(kw.kept(fitted, t.keywords)) >= len(kw.kept(extract, t.keywords)):
        t.text, t.outcome = fitted, "rewritten"
        notes = [failure] if failure else []
        if fitted != rewrite:
            notes.append("rewrite trimmed to its budget")
        t.reason = "; ".join(notes)
    else:
        t.text, t.outcome = extract, "extract"
        t.reason = (f"{failure or 'the rewrite lost keywords'}: original sentences kept "
                    "verbatim instead")


def scope_compress(
    text: str,
    target: int,
    backend: LLMBackend,
    embedder: Any,
    *,
    question: str | None,
    progress: Progress,
    max_attempts: int = 2,
    min_chunk_tokens: int = 32,
    max_chunk_tokens: int = 256,
    max_chunk_ratio: float = 4.0,
    min_chunk_budget: int = 20,
) -> tuple[str, list[ChunkTrace], Usage]:
    count: Counter = backend.count_tokens
    progress(0, 1, "Splitting into semantic chunks")
    spans, relevance, scores = _chunks(
        text, count, embedder, question, min_chunk_tokens, max_chunk_tokens
    )
    originals = [text[a:b] for a, b in spans]
    sizes = [count(o) for o in originals]
    alloc = allocate(
        sizes, relevance, target, strength=1.0 if question else 0.4,
        max_chunk_ratio=max_chunk_ratio, min_chunk_tokens=min_chunk_budget,
    )
    rare = kw.rare_terms(originals)
    traces: list[ChunkTrace] = []
    for i, (a, b) in enumerate(spans):
        budget = alloc.budgets[i]
        t = ChunkTrace(i, a, b, sizes[i], round(relevance[i], 4), budget)
        if i in alloc.dropped:
            t.outcome, t.reason = "dropped", alloc.dropped[i]
            t.keywords = kw.chunk_keywords(originals[i], rare[i], sizes[i], count)
        else:
            t.keywords = _keepable(originals[i], rare[i], budget, count=count, scores=scores[i])
        traces.append(t)

    todo = [t for t in traces if t.outcome != "dropped" and t.target_tokens < t.original_tokens]
    for t in traces:
        if t.outcome != "dropped" and t not in todo:
            t.outcome, t.text = "unchanged", originals[t.index]
            t.reason = "its share covers it whole"
    steps = max(1, len(todo)) * max_attempts + 1
    best, failures, usage = _rewrite(backend, todo, originals, max_attempts, progress, steps)
    for t in todo:
        _choose(t, originals[t.index], best.get(t.index), failures.get(t.index), count,
                scores[t.index])

    progress(steps - 1, steps, "Measuring and balancing the ratio")
    pieces = [
        Piece(t, originals[t.index], scores[t.index],
              partial(_keepable, originals[t.index], rare[t.index], count=count,
                      scores=scores[t.index]))
        for t in traces
    ]
    out = balance(pieces, target, count, min_chunk_tokens=min_chunk_budget)
    for t in traces:
        t.achieved_tokens = count(t.text) if t.text else 0
        t.keywords_kept = kw.kept(t.text, t.keywords) if t.text else []
    return out, traces, usage


def keyword_totals(traces: Sequence[ChunkTrace], final_text: str) -> tuple[int, int, int]:
    """(kept, total) over chunks that were not dropped, plus keywords of dropped chunks."""
    total = kept_n = in_dropped = 0
    for t in traces:
        if t.outcome == "dropped":
            in_dropped += len(t.keywords)
            continue
        total += len(t.keywords)
        kept_n += len(kw.kept(final_text, t.keywords))
    return kept_n, total, in_dropped
