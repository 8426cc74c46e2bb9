"""A plan's sections and how words are shared among them: the pieces that the plan and
its coverage check both build on (kept apart so that neither imports the other)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

MIN_SECTION, MAX_SECTION, DEFAULT_SECTION = 200, 1000, 500


@dataclass
class PlanSection:
    index: int  # 1-based position
    point: str
    words: int
    # The instruction parts, units and items it serves ("part:1", "unit:24", "item:2").
    serves: list[str] = field(default_factory=list)


def distribute(total: int, weights: list[float]) -> list[int]:
    """Integers proportional to ``weights`` that add up to ``total`` exactly."""
    scale = total / (sum(weights) or 1)
    raw = [w * scale for w in weights]
    out = [math.floor(r) for r in raw]
    by_remainder = sorted(range(len(raw)), key=lambda i: raw[i] - out[i], reverse=True)
    for i in by_remainder[:total - sum(out)]:
        out[i] += 1
    return out
