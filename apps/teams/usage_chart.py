"""The geometry of the usage page's bar chart, drawn by the template as SVG (no script).

Each day is one bar, tokens in below tokens out. Only numbers are computed here; the
template writes them into the SVG and escapes every label.
"""

from __future__ import annotations

from dataclasses import dataclass

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 8, 12, 28  # room for the axis labels
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
    width: int
    height: int
    left: int
    plot_right: int
    baseline: float
    bars: list[Bar]
    y_ticks: list[tuple[float, str]]
    x_labels: list[tuple[float, str]]


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
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    baseline = TOP + plot_h
    slot = plot_w / max(len(rows), 1)
    gap = min(slot * 0.2, 4)
    bars = []
    for n, row in enumerate(rows):
        in_h = plot_h * row.tokens_in / top
        out_h = plot_h * row.tokens_out / top
        bars.append(Bar(
            x=round(LEFT + n * slot + gap / 2, 2), width=round(slot - gap, 2),
            in_y=round(baseline - in_h, 2), in_height=round(in_h, 2),
            out_y=round(baseline - in_h - out_h, 2), out_height=round(out_h, 2),
            title=f"{row.label}: {row.tokens_in:,} tokens in, {row.tokens_out:,} out, "
                  f"{row.jobs:,} jobs",
        ))
    every = max(1, -(-len(rows) // MOST_X_LABELS))  # ceil: at most MOST_X_LABELS labels
    x_labels = [(round(LEFT + (n + 0.5) * slot, 2), row.label[5:])  # MM-DD of the ISO day
                for n, row in enumerate(rows) if n % every == 0]
    y_ticks = [(round(baseline - plot_h * part, 2), short_number(int(top * part)))
               for part in (0, 0.5, 1)]
    return Chart(WIDTH, HEIGHT, LEFT, WIDTH - RIGHT, baseline, bars, y_ticks, x_labels)
