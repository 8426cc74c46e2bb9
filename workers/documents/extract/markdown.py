"""Markdown: kept as source text (what the reader sees quoted), with ATX headings located."""

from __future__ import annotations

import re

from ..document import ExtractedDocument, Heading, from_text
from ..limits import Limits
from ..normalize import normalize_text
from ..sniff import decode_text
from . import register

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.M | re.S)


def markdown_headings(text: str) -> list[Heading]:
    fenced = [m.span() for m in _FENCE.finditer(text)]
    headings = []
    for m in _HEADING.finditer(text):
        if any(a <= m.start() < b for a, b in fenced):
            continue  # "# comment" inside a code block is not a heading
        headings.append(Heading(len(m.group(1)), m.group(2), m.start(2)))
    return headings


@register("markdown")
def extract_markdown(data: bytes, limits: Limits) -> ExtractedDocument:
    text = normalize_text(decode_text(data))
    headings = markdown_headings(text)
    title = next((h.text for h in headings if h.level == 1), headings[0].text if headings else "")
    return from_text(
        "markdown", text, title=title, headings=headings, page_chars=limits.synthetic_page_chars
    )
