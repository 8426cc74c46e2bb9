"""HTML via trafilatura (main content, scripts and styles gone), lxml as the fallback."""

from __future__ import annotations

import re

import trafilatura

from ..document import ExtractedDocument, from_blocks
from ..limits import Limits
from ..sniff import decode_text
from . import register
from .htmltext import html_blocks, html_title, parse_html

_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")


@register("html")
def extract_html(data: bytes, limits: Limits) -> ExtractedDocument:
    source = decode_text(data)
    root = parse_html(source)
    title = html_title(root)
    markdown = trafilatura.extract(
        source,
        output_format="markdown",
        include_formatting=True,
        include_tables=True,
        include_comments=False,
        favor_recall=True,
    )
    if markdown and markdown.strip():
        blocks = []
        for para in markdown.split("\n\n"):
            m = _MD_HEADING.match(para.strip())
            blocks.append((len(m.group(1)), m.group(2)) if m else (0, para))
    else:
        # trafilatura gives up on very short or unusual pages; keep their text anyway.
        blocks = html_blocks(root)
    return from_blocks("html", blocks, title=title, page_chars=limits.synthetic_page_chars)
