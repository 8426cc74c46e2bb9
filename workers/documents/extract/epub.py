"""EPUB: container.xml → OPF → spine order → XHTML chapters, read with bounded inflation."""

from __future__ import annotations

import posixpath

from lxml import etree

from ..document import ExtractedDocument, from_blocks
from ..errors import CorruptDocument
from ..limits import Limits
from ..safezip import open_zip, read_members
from . import register
from .htmltext import html_blocks, parse_html

_NS = {
    "c": "urn:oasis:names:tc:opendocument:xmlns:container",
    "opf": "http://www.idpf.org/2007/opf",
    "dc": "http://purl.org/dc/elements/1.1/",
}
# Parse without network access or entity expansion (billion-laughs).
_XML = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


@register("epub")
def extract_epub(data: bytes, limits: Limits) -> ExtractedDocument:
    members = read_members(open_zip(data, limits), limits=limits)
    try:
        container = etree.fromstring(members["META-INF/container.xml"], _XML)
        opf_path = container.find(".//c:rootfile", _NS).get("full-path")
        opf = etree.fromstring(members[opf_path], _XML)
    except (KeyError, AttributeError, etree.XMLSyntaxError) as exc:
        raise CorruptDocument("the EPUB file is damaged: no readable package file") from exc
    base = posixpath.dirname(opf_path)
    manifest = {
        item.get("id"): posixpath.normpath(posixpath.join(base, item.get("href", "")))
        for item in opf.iterfind(".//opf:manifest/opf:item", _NS)
    }
    title_el = opf.find(".//dc:title", _NS)
    title = " ".join((title_el.text or "").split()) if title_el is not None else ""
    blocks: list[tuple[int, str]] = []
    for ref in opf.iterfind(".//opf:spine/opf:itemref", _NS):
        path = manifest.get(ref.get("idref"))
        if path and path in members:
            blocks.extend(html_blocks(parse_html(members[path])))
    return from_blocks("epub", blocks, title=title, page_chars=limits.synthetic_page_chars)
