"""Seconds as people say them: "≈ 40 s", "≈ 12 min", "≈ 2.4 h"."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter(name="about")
def about(seconds) -> str:
    if seconds is None:
        return "not measured yet"
    seconds = float(seconds)
    if seconds < 90:
        return f"≈ {max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"≈ {round(seconds / 60)} min"
    return f"≈ {seconds / 3600:.1f} h"
