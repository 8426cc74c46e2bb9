"""DOCX via python-docx, after the container passed the zip-bomb checks."""

from __future__ import annotations

import io
import re

import docx
from docx.table import Table
from docx.text.paragraph import Paragraph

from ..document import ExtractedDocument, from_blocks
from ..errors import CorruptDocument
from ..limits import Limits
from ..safezip import safe_zip_bytes
from . import register

_HEADING_STYLE = re.compile(r"^heading\s*(\d)$", re.I)


@register("docx")
def extract_docx(data: bytes, limits: Limits) -> ExtractedDocument:
    checked = safe_zip_bytes(data, limits)
    try:
        document = docx.Document(io.BytesIO(checked))
    except Exception as exc:  # python-docx raises KeyError/XMLSyntaxError/... on damage
        raise CorruptDocument("the DOCX file is damaged and cannot be read") from exc
    blocks: list[tuple[int, str]] = []
    # Walk the body in order so tables stay where they were, between paragraphs.
    for child in document.element.body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            para = Paragraph(child, document)
            blocks.append((_heading_level(para), para.text))
        elif tag == "tbl":
            table = Table(child, document)
            for row in table.rows:
                cells = [" ".join(c.text.split()) for c in row.cells]
                blocks.append((0, " | ".join(cells)))
    title = (document.core_properties.title or "").strip()
    return from_blocks("docx", blocks, title=title, page_chars=limits.synthetic_page_chars)


def _heading_level(para: Paragraph) -> int:
    try:
        name = para.style.name if para.style is not None else ""
    except (KeyError, AttributeError):
        return 0
    if name.lower() == "title":
        return 1
    m = _HEADING_STYLE.match(name or "")
    return int(m.group(1)) if m else 0
