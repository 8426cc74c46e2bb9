"""HTML → (heading level, text) blocks with lxml: the fallback for HTML and the EPUB reader."""

from __future__ import annotations

from lxml import etree
from lxml import html as lxml_html

_DROP = {"script", "style", "noscript", "template", "head", "svg", "math", "iframe", "object"}
_BLOCK = {
    "p",
    "div",
    "li",
    "pre",
    "blockquote",
    "tr",
    "section",
    "article",
    "aside",
    "header",
    "footer",
    "figcaption",
    "dd",
    "dt",
    "table",
    "ul",
    "ol",
    "main",
    "nav",
    "br",
    "hr",
}
_HEADINGS = {f"h{i}": i for i in range(1, 7)}


def parse_html(data: bytes | str) -> etree._Element:
    if isinstance(data, str):
        data = data.encode("utf-8")
    data = _without_doctype(data)
    parser = lxml_html.HTMLParser(remove_comments=True, remove_pis=True, encoding="utf-8")
    try:
        return lxml_html.document_fromstring(data, parser=parser)
    except etree.ParserError:  # "Document is empty" (found by fuzzing): no text, not a crash
        return etree.Element("html")


def _without_doctype(data: bytes) -> bytes:
    """``data`` without a leading DOCTYPE declaration. lxml's HTML parser does not know an
    internal subset (``<!DOCTYPE html [<!ENTITY …>]>``, common in EPUB's XHTML) and keeps its
    tail ``]>`` as text; the declaration carries no text, so it is cut (plain finds: linear)."""
    start = data[:1024].upper().find(b"<!DOCTYPE")
    before = data[:start].lstrip(b"\xef\xbb\xbf \t\r\n")  # a BOM, white space, <?xml …?>
    if start < 0 or before and not before.startswith(b"<?xml"):
        return data
    close = data.find(b">", start)
    subset = data.find(b"[", start, close if close >= 0 else len(data))
    if subset >= 0:
        close = data.find(b"]>", subset)
        close = close + 1 if close >= 0 else -1
    return data if close < 0 else data[:start] + data[close + 1:]


def html_title(root: etree._Element) -> str:
    found = root.find(".//title")
    return " ".join((found.text_content() if found is not None else "").split())


def html_blocks(root: etree._Element) -> list[tuple[int, str]]:
    """Walk the tree once; scripts and styles are dropped, block elements end a paragraph."""
    blocks: list[tuple[int, str]] = []
    current: list[str] = []

    def flush(level: int = 0) -> None:
        joined = " ".join("".join(current).split())
        if joined:
            blocks.append((level, joined))
        current.clear()

    def walk(el: etree._Element) -> None:
        tag = el.tag.rsplit("}", 1)[-1].lower() if isinstance(el.tag, str) else ""
        if not tag or tag in _DROP:
            if el.tail:
                current.append(el.tail)
            return
        if tag in _HEADINGS:
            flush()
            current.append(el.text_content())
            flush(_HEADINGS[tag])
        else:
            if tag in _BLOCK:
                flush()
            if el.text:
                current.append(el.text)
            for child in el:
                walk(child)
            if tag in _BLOCK:
                flush()
        if el.tail:
            current.append(el.tail)

    body = root.find(".//body")
    walk(body if body is not None else root)
    flush()
    return blocks
