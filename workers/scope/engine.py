"""``compress()``: the one entry point (the Compress page's job, the QA stage, the bench)."""

from __future__ import annotations

import time
from typing import Any

from workers.documents.embeddings import get_embedder
from workers.llm import get_backend
from workers.llm.base import LLMBackend
from workers.progress import Progress, no_progress

from . import keywords as kw
from .deletion import deletion_compress
from .fitting import fit
from .pipeline import keyword_totals, scope_compress
from .types import CompressionError, CompressionResult
from .validation import check_method, check_target, check_text

# Within this share of the target ratio the result counts as on target (the goal: ±10%).
TOLERANCE = 0.10


def compress(
    text: str,
    *,
    ratio: float | None = None,
    target_tokens: int | None = None,
    question: str | None = None,
    backend: LLMBackend | None = None,
    embedder: Any = None,
    progress: Progress | None = None,
    method: str = "scope",
    max_attempts: int = 2,
) -> CompressionResult:
    """Compress ``text`` to ``ratio``× fewer tokens, or into ``target_tokens`` tokens.

    ``method``: "scope" (generative rewrite, the default) or "deletion" (the baseline).
    ``question``: makes the compression question-aware (relevant chunks keep more).
    Raises ``CompressionError`` (a ``ValueError``) for bad input; ``Cancelled`` when
    ``progress`` raises it. A text already within the budget comes back unchanged.
    """
    started = time.perf_counter()
    text = check_text(text)
    check_method(method)
    check_target(ratio, target_tokens)
    if question is not None and not isinstance(question, str):
        raise CompressionError("the question must be text")
    question = (question or "").strip() or None
    progress = progress or no_progress
    if backend is None:
        backend = get_backend()
    original = backend.count_tokens(text)
    target = target_tokens or max(1, round(original / float(ratio)))  # type: ignore[arg-type]
    wanted_ratio = original / target
    result = CompressionResult(
        text=text, original_tokens=original, compressed_tokens=original,
        target_ratio=float(ratio) if ratio is not None else wanted_ratio,
        target_tokens=target, method=method,
    )
    if original <= target:
        result.unchanged = True
        result.note = (f"The text ({original} tokens) is already within the budget of "
                       f"{target} tokens: returned unchanged.")
        result.target_ratio = max(1.0, result.target_ratio)
        result.seconds = time.perf_counter() - started
        return result
    if method == "scope":
        if embedder is None:
            embedder = get_embedder()
        out, traces, usage = scope_compress(
            text, target, backend, embedder, question=question, progress=progress,
            max_attempts=max_attempts,
        )
        kept, total, in_dropped = keyword_totals(traces, out)
    else:
        out, traces, usage = deletion_compress(text, target, backend, progress=progress)
        # The baseline has no keyword notion of its own: measure it with the same extractor.
        found = [k for k, _ in kw.candidates(text)]
        kept, total, in_dropped = len(kw.kept(out, found)), len(found), 0
    result.text, result.chunks, result.usage = out, traces, usage
    result.compressed_tokens = backend.count_tokens(out) if out else 0
    result.keywords_kept, result.keywords_total = kept, total
    result.keywords_in_dropped = in_dropped
    achieved = result.achieved_ratio
    result.on_target = abs(achieved - result.target_ratio) <= TOLERANCE * result.target_ratio
    dropped = sum(1 for t in traces if t.outcome == "dropped")
    result.note = (
        f"{original} → {result.compressed_tokens} tokens ({achieved:.2f}× for "
        f"{result.target_ratio:.2f}× asked)"
        + (f"; {dropped} of {len(traces)} chunks dropped as least relevant" if dropped else "")
    )
    if not result.on_target:
        result.note += (
            f". The target could not be met within ±{TOLERANCE:.0%}: the text cannot be cut "
            "finer than this (too short, or one unbreakable piece)."
        )
    progress(1, 1, "Done")
    result.seconds = time.perf_counter() - started
    return result


def compress_to_budget(
    text: str,
    budget_tokens: int,
    *,
    question: str | None,
    backend: LLMBackend,
    embedder: Any = None,
    progress: Progress | None = None,
) -> CompressionResult:
    """Squeeze ``text`` into ``budget_tokens`` (the QA stage: fit context to a window).

    Unlike ``compress``, the result never exceeds the budget: a landing above it (within
    the tolerance) is trimmed to it, so the caller's prompt is sure to fit.
    """
    fits = isinstance(text, str) and backend.count_tokens(text) <= budget_tokens
    # Aim a little under the budget: the landing band reaches above the target.
    target = budget_tokens if fits else max(4, int(budget_tokens * 0.95))
    result = compress(
        text, target_tokens=target, question=question,
        backend=backend, embedder=embedder, progress=progress,
    )
    if result.compressed_tokens > budget_tokens:
        result.text = fit(result.text, budget_tokens, backend.count_tokens)
        result.compressed_tokens = backend.count_tokens(result.text)
    return result
