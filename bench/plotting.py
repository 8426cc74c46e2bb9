"""What every benchmark's plot needs: pyplot drawing to files, and a bar panel with a goal."""

from __future__ import annotations

from collections.abc import Sequence


def pyplot():
    """matplotlib's pyplot drawing to files (no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def bar_panel(ax, labels: Sequence[str], values: Sequence[float], title: str, *,
              color: str = "#4f86c6", goal: float | None = None,
              ylim: tuple[float, float] | None = None, label: str | None = None) -> None:
    """One bar chart in ``ax``: the values, a dashed line at the goal, the title."""
    ax.bar(labels, values, color=color, label=label)
    if goal is not None:
        ax.axhline(goal, color="grey", ls="--", lw=1)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_title(title)
