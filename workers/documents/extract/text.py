"""Plain text: decode, normalise, synthetic pages."""

from __future__ import annotations

from ..document import ExtractedDocument, from_text
from ..limits import Limits
from ..normalize import normalize_text
from ..sniff import decode_text
from ..titles import text_heading
from . import register


@register("text")
def extract_text(data: bytes, limits: Limits) -> ExtractedDocument:
    text = normalize_text(decode_text(data))
    return from_text("text", text, title=text_heading(text),
                     page_chars=limits.synthetic_page_chars)
