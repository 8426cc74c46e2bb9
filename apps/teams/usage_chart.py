"""The geometry of the usage page's bar chart: an SVG of the bars, one per day (tokens in
below tokens out), and the positions of its axis labels, as numbers only.

The bars' SVG stretches to the page's width (preserveAspectRatio="none": a slot is
SLOT units wide, the height is 100 units), while the labels are HTML placed in percent, so
the text keeps its size on a phone and on a wide screen. The template escapes every label.
"""

from __future__ import annotations

from dataclasses import dataclass

SLOT = 10  # units per day in the SVG's viewBox
GAP = 2  # units between two bars
MOST_X_LABELS = 8


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    in_y: float
    in_height: float
    out_y: float
    out_height: float
    title: str  # the day and its figures, shown on hover


@dataclass(frozen=True)
class Chart:
    width: int  # the viewBox's width; its height is 100
    bars: list[Bar]
    y_ticks: list[tuple[int, str]]  # (percent from the bottom, label)
    x_labels: list[tuple[float, str, bool]]  # (percent from the left, label, kept on a phone)


def nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten that is at least `value` (1 for 0)."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def short_number(value: int) -> str:
    for size, unit in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if value >= size:
            return f"{value / size:.1f}".rstrip("0").rstrip(".") + unit
    return str(value)


def bar_chart(rows) -> Chart:
    """`rows`: one usage Row per day, in order."""
    top = nice_ceiling(max([2, *(row.tokens for row in rows)]))  # 2: an axis 0-1-2 when idle
    bars = []
    for n, row in enumerate(rows):
        in_h, out_h = 100 * row.tokens_in / top, 100 * row.tokens_out / top
        bars.append(Bar(
            x=n * SLOT + GAP / 2, width=SLOT - GAP,
            in_y=round(100 - in_h, 3), in_height=round(in_h, 3),
            out_y=round(100 - in_h - out_h, 3), out_height=round(out_h, 3),
            title=f"{row.label}: {row.tokens_in:,} tokens in, {row.tokens_out:,} out, "
                  f"{row.jobs:,} jobs",
        ))
    every = max(1, -(-len(rows) // MOST_X_LABELS))  # ceil: at most MOST_X_LABELS labels
    shown = [n for n in range(len(rows)) if n % every == 0]
    x_labels = [(round(100 * (n + 0.5) / len(rows), 3), rows[n].label[5:],  # MM-DD
                 len(shown) <= MOST_X_LABELS // 2 or i % 2 == 0)
                for i, n in enumerate(shown)]
    y_ticks = [(part, short_number(top * part // 100)) for part in (0, 50, 100)]
    return Chart(max(len(rows), 1) * SLOT, bars, y_ticks, x_labels)
