"""HTML via trafilatura (main content, scripts and styles gone), lxml as the fallback."""

from __future__ import annotations

import re

import trafilatura

from ..document import ExtractedDocument, from_blocks
from ..limits import Limits
from ..sniff import decode_text
from . import register
from .htmltext import html_blocks, html_title, parse_html

_MD_HEADING = re.compile(r"(#{1,6})[ \t]+(.*)")  # one line only: see extract_html
# trafilatura's Markdown escapes punctuation ("\<b>"); the text is stored, not rendered.
_MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!<>|~])")


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
            para = para.strip()
            # A heading is a single line; checking that first keeps the match linear.
            m = _MD_HEADING.fullmatch(para) if "\n" not in para else None
            level, text = (len(m.group(1)), m.group(2)) if m else (0, para)
            blocks.append((level, _MD_ESCAPE.sub(r"\1", text)))
    else:
        # trafilatura gives up on very short or unusual pages; keep their text anyway.
        blocks = html_blocks(root)
    return from_blocks("html", blocks, title=title, page_chars=limits.synthetic_page_chars)
