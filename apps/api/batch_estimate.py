"""What a whole qa batch will cost before it runs: the per-question preview
(apps.documents.estimates.question_preview) summed over the batch's distinct question ×
documents pairs. Past SAMPLE_PAIRS pairs an even sample is previewed and scaled up, and the
result says so."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from apps.documents import estimates

SAMPLE_PAIRS = 25


@dataclass
class BatchEstimate:
    items: int
    pairs: int  # distinct question × documents
    sampled: int  # of which previewed
    calls: float = 0
    prompt_tokens: float = 0
    completion_tokens: float = 0
    seconds: float | None = 0
    auto_picks: Counter = field(default_factory=Counter)  # strategy → items (auto only)
    refused: list[str] = field(default_factory=list)

    @property
    def is_sample(self) -> bool:
        return self.sampled < self.pairs

    @property
    def picks(self) -> list[tuple[str, int]]:
        return self.auto_picks.most_common()

    @property
    def minutes(self) -> float | None:
        return None if self.seconds is None else self.seconds / 60


def even_sample(values: list, size: int) -> list:
    if len(values) <= size:
        return values
    step = len(values) / size
    return [values[int(i * step)] for i in range(size)]


def batch_estimate(team, items: list[dict]) -> BatchEstimate:
    """`items`: qa items as batch_files builds them (question, document_ids, strategy)."""
    weights = Counter((i["question"], tuple(i["document_ids"]), i.get("strategy") or "auto")
                      for i in items)
    pairs = list(weights)
    sample = even_sample(pairs, SAMPLE_PAIRS)
    found = BatchEstimate(items=len(items), pairs=len(pairs), sampled=len(sample))
    scale = sum(weights.values()) / max(1, sum(weights[p] for p in sample))
    for question, ids, strategy in sample:
        try:
            preview = estimates.question_preview(team, ids, question)
        except estimates.EstimateRefused as err:
            found.refused.append(str(err))
            continue
        chosen = preview.estimate(strategy)
        if chosen is None:  # "full" past the window, or a strategy the preview does not model
            why = (f"its {preview.document_tokens:,} tokens do not fit one prompt"
                   if strategy == "full" else "the preview has no cost model for it yet")
            found.refused.append(f"“{question[:80]}”: no estimate with {strategy}: {why}.")
            continue
        n = weights[(question, ids, strategy)] * scale
        found.calls += chosen.calls * n
        found.prompt_tokens += chosen.prompt_tokens * n
        found.completion_tokens += chosen.completion_tokens * n
        if chosen.seconds is None or found.seconds is None:
            found.seconds = None  # the model's rates are not measured yet
        else:
            found.seconds += chosen.seconds * n
        if strategy == "auto":
            found.auto_picks[preview.choice] += round(n)
    return found
