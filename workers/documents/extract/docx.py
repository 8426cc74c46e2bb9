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
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


@register("docx")
def extract_docx(data: bytes, limits: Limits) -> ExtractedDocument:
    checked = safe_zip_bytes(data, limits)
    try:
        document = docx.Document(io.BytesIO(checked))
    except Exception as exc:  # python-docx raises KeyError/XMLSyntaxError/... on damage
        raise CorruptDocument("the DOCX file is damaged and cannot be read") from exc
    blocks: list[tuple[int, str]] = []
    styles, default = _style_names(document)
    # Walk the body in order so tables stay where they were, between paragraphs.
    for child in document.element.body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            para = Paragraph(child, document)
            style = child.find(f"{_W}pPr/{_W}pStyle")
            name = styles.get(style.get(f"{_W}val"), "") if style is not None else default
            blocks.append((_heading_level(name), para.text))
        elif tag == "tbl":
            table = Table(child, document)
            for row in table.rows:
                cells = [" ".join(c.text.split()) for c in row.cells]
                blocks.append((0, " | ".join(cells)))
    title = (document.core_properties.title or "").strip()
    return from_blocks("docx", blocks, title=title, page_chars=limits.synthetic_page_chars)


def _style_names(document) -> tuple[dict[str, str], str]:
    """Style id → name, and the default paragraph style's name, read once. Not
    ``Paragraph.style``: without an explicit style it scans every style for the default, so
    a file of many plain paragraphs took paragraphs × styles (300 list items: 6 s)."""
    names: dict[str, str] = {}
    default = ""
    try:
        root = document.styles.element
    except (KeyError, AttributeError):
        return names, default
    for style in root.iterchildren(f"{_W}style"):
        name_el = style.find(f"{_W}name")
        name = (name_el.get(f"{_W}val") or "") if name_el is not None else ""
        names[style.get(f"{_W}styleId") or ""] = name
        if style.get(f"{_W}type") == "paragraph" and style.get(f"{_W}default") in ("1", "true"):
            default = name
    return names, default


def _heading_level(style_name: str) -> int:
    if style_name.lower() == "title":
        return 1
    m = _HEADING_STYLE.match(style_name)
    return int(m.group(1)) if m else 0
