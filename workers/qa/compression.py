"""Optional SCOPE stage of the strategies: read ``ratio``× more text, squeezed back into
the same budget by question-aware generative compression (``workers.scope``).

rag retrieves ``ratio``× its context budget, xl3m answers from its kept segments instead
of a handful of sentences, and each CoA worker reads a ``ratio``× larger chunk; the model
sees the compressed text. Citations still point at exact spans of the original documents
(the evidence the strategies rank), never at rewritten text. The trace records before and
after sizes per compressed block.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby

from workers.scope import compress_to_budget

from .prompts import document_block
from .run import Run
from .scoring import Span

MAX_RATIO = 10.0


def check_ratio(ratio: object) -> float | None:
    """The ``compress`` option: None/0/1 = off; otherwise a ratio in (1, 10]."""
    if ratio in (None, 0, 1, False):
        return None
    try:
        value = float(ratio)  # type: ignore[arg-type]
    except OverflowError:  # an integer of hundreds of digits: no float, and far too large
        value = float("inf")
    except (TypeError, ValueError):
        raise ValueError(f"compress must be a ratio like 2 or 3, not {ratio!r}") from None
    if not 1 < value <= MAX_RATIO:
        raise ValueError(f"compress must be a ratio above 1 and at most {MAX_RATIO:g}")
    return value


def compressed_blocks(run: Run, question: str, spans: Sequence[Span], budget: int) -> list[str]:
    """``spans`` (in reading order) as document blocks compressed to ``budget`` tokens in
    all, shared among the documents by their size."""

    groups = [(doc, list(g)) for doc, g in groupby(spans, key=lambda s: s.document)]
    texts = [" … ".join(s.text for s in g) for _, g in groups]
    sizes = [run.count(t) for t in texts]
    total = sum(sizes) or 1
    blocks: list[str] = []
    with run.step("compress", ratio=run.compress_ratio, budget=budget) as step:
        step.notes["blocks"] = []
        for (doc, _), text, size in zip(groups, texts, sizes, strict=True):
            share = max(32, budget * size // total - 16)  # - the block's tags
            result = compress_to_budget(text, share, question=question, backend=run.backend)
            run.add_usage(result.usage)
            blocks.append(document_block(doc.id, doc.title, result.text, part="compressed"))
            step.notes["blocks"].append({
                "document_id": doc.id, "tokens_before": result.original_tokens,
                "tokens_after": result.compressed_tokens,
                "achieved_ratio": round(result.achieved_ratio, 2),
                "keyword_retention": round(result.keyword_retention, 3),
                "unchanged": result.unchanged, "note": result.note})
    return blocks
