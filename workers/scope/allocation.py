"""Dynamic ratio: give each chunk its own token budget so the budgets sum to the target.

1. Prioritisation: while the kept chunks would need more than ``max_chunk_ratio``× on
   average, drop the least relevant chunk (a rewrite cannot squeeze a paragraph into a
   few words and keep its sense; better to lose the least relevant whole).
2. Water-filling: share the target among the kept chunks in proportion to
   ``tokens · exp(strength · (relevance − mean) / 0.1)`` with no chunk above its own length (the
   surplus of capped chunks flows to the others), so the least relevant are compressed
   hardest.
3. A chunk whose share is below ``min_chunk_tokens`` is dropped and its share re-spread.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# A cosine-similarity difference of this much multiplies a chunk's weight by e^strength.
RELEVANCE_SCALE = 0.1


@dataclass(frozen=True)
class Allocation:
    budgets: list[int]  # 0 for dropped chunks
    dropped: dict[int, str]  # index -> why


def _water_fill(sizes: Sequence[int], weights: Sequence[float], total: float) -> list[float]:
    budgets = [0.0] * len(sizes)
    free = [i for i in range(len(sizes)) if sizes[i] > 0]
    remaining = total
    while free:
        weight_sum = sum(weights[i] for i in free) or 1.0
        capped = [i for i in free if remaining * weights[i] / weight_sum >= sizes[i]]
        if not capped:
            for i in free:
                budgets[i] = remaining * weights[i] / weight_sum
            break
        for i in capped:
            budgets[i] = float(sizes[i])
            remaining -= sizes[i]
        free = [i for i in free if i not in capped]
    return budgets


def allocate(
    sizes: Sequence[int],
    relevance: Sequence[float],
    target: int,
    *,
    strength: float = 1.0,
    max_chunk_ratio: float = 4.0,
    min_chunk_tokens: int = 20,
) -> Allocation:
    n = len(sizes)
    dropped: dict[int, str] = {}
    by_relevance = sorted(range(n), key=lambda i: relevance[i])
    kept = set(range(n))
    for i in by_relevance:
        if len(kept) <= 1 or sum(sizes[j] for j in kept) <= max_chunk_ratio * target:
            break
        kept.discard(i)
        dropped[i] = "least relevant: dropped so the rest need at most "
        dropped[i] += f"{max_chunk_ratio:g}× each"
    while True:
        mean = sum(relevance[i] for i in kept) / len(kept)
        # A fixed scale, not the spread: near-equal relevances (no question, a uniform
        # text) must not be stretched into a steep preference.
        weights = [
            sizes[i] * math.exp(min(4.0, strength * (relevance[i] - mean) / RELEVANCE_SCALE))
            if i in kept else 0.0
            for i in range(n)
        ]
        sized = [sizes[i] if i in kept else 0 for i in range(n)]
        budgets = _water_fill(sized, weights, float(target))
        # A chunk kept whole may be short; one cut down to a sliver says nothing.
        too_small = [i for i in kept if budgets[i] < min(min_chunk_tokens, sizes[i])]
        if not too_small or len(kept) <= 1:
            break
        worst = min(too_small, key=lambda i: relevance[i])
        kept.discard(worst)
        dropped[worst] = f"its share ({budgets[worst]:.0f} tokens) was too small to say anything"
    return Allocation([round(b) if i in kept else 0 for i, b in enumerate(budgets)], dropped)
