"""Plain text: decode, normalise, synthetic pages."""

from __future__ import annotations

from ..document import ExtractedDocument, from_text
from ..limits import Limits
from ..normalize import normalize_text
from ..sniff import decode_text
from . import register


@register("text")
def extract_text(data: bytes, limits: Limits) -> ExtractedDocument:
    text = normalize_text(decode_text(data))
    first_line = text[:200].split("\n", 1)[0].strip()
    title = first_line if 0 < len(first_line) <= 120 else ""
    return from_text("text", text, title=title, page_chars=limits.synthetic_page_chars)
