"""Markdown: kept as source text (what the reader sees quoted), with ATX headings located."""

from __future__ import annotations

import re
from bisect import bisect_right

from ..document import ExtractedDocument, Heading, from_text
from ..limits import Limits
from ..normalize import normalize_text
from ..sniff import decode_text
from ..titles import pick_title
from . import register

# Both are linear: the heading's closing "#"s are stripped in Python (a regex with two
# optional space runs around them is cubic on a long run of spaces), and fences are paired
# line by line (a lazy ".*?" up to a closing fence is quadratic on many unclosed openers).
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.*)$", re.M)
_FENCE_MARKERS = ("```", "~~~")


def fenced_spans(text: str) -> list[tuple[int, int]]:
    """Code fences: an opener line starts with ``` or ~~~; it closes at the next line that
    is the same marker alone (trailing spaces allowed); an opener without one is no fence."""
    lines = text.split("\n")
    starts = []
    offset = 0
    for line in lines:
        starts.append(offset)
        offset += len(line) + 1
    closers = {m: [i for i, line in enumerate(lines) if line.rstrip(" \t") == m]
               for m in _FENCE_MARKERS}
    spans = []
    i = 0
    while i < len(lines):
        later = closers.get(lines[i][:3], [])
        k = bisect_right(later, i)
        if k < len(later):
            j = later[k]
            spans.append((starts[i], starts[j] + len(lines[j])))
            i = j + 1
        else:
            i += 1
    return spans


def markdown_headings(text: str) -> list[Heading]:
    fenced = fenced_spans(text)
    fence_starts = [a for a, _ in fenced]
    headings = []
    for m in _HEADING.finditer(text):
        k = bisect_right(fence_starts, m.start()) - 1
        if k >= 0 and m.start() < fenced[k][1]:
            continue  # "# comment" inside a code block is not a heading
        body = m.group(2).rstrip(" \t")
        core = body.rstrip("#").rstrip(" \t") or body[:1]
        if core.strip():
            headings.append(Heading(len(m.group(1)), core, m.start(2)))
    return headings


@register("markdown")
def extract_markdown(data: bytes, limits: Limits) -> ExtractedDocument:
    text = normalize_text(decode_text(data))
    headings = markdown_headings(text)
    title = pick_title("", [h for h in headings if h.level == 1] or headings)
    return from_text(
        "markdown", text, title=title, headings=headings, page_chars=limits.synthetic_page_chars
    )
