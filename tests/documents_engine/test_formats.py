"""Every supported format: sniffed by content, extracted with text, pages, headings, title."""

from __future__ import annotations

import random
import unicodedata

import pytest

from workers.documents import extract_document, sniff
from workers.documents.synth import filler_text, make_text_pdf

from .builders import make_docx, make_epub


def test_pdf_pages_title_and_text():
    pages = [f"Page {i} says hello number {i}." for i in range(1, 4)]
    doc = extract_document(make_text_pdf(pages, title="Quarterly report"))
    assert doc.kind == "pdf"
    assert doc.title == "Quarterly report"
    assert doc.stats.pages == 3
    assert not doc.synthetic_pages
    for i, page in enumerate(pages, start=1):
        assert doc.page_text(i) == page
    assert doc.stats.words == sum(len(p.split()) for p in pages)


def test_pdf_header_after_junk_is_still_pdf():
    data = b"\n\n" + make_text_pdf(["hi there"])
    assert sniff(data) == "pdf"


def test_docx_headings_paragraphs_and_tables_in_order():
    data = make_docx(
        [(1, "Master agreement"), (0, "The parties agree."), (2, "Payment"), (0, "Pay on time.")],
        title="Contract",
        table=[["Item", "Price"], ["Widget", "10"]],
    )
    assert sniff(data) == "docx"
    doc = extract_document(data)
    assert doc.kind == "docx"
    assert doc.title == "Contract"
    assert [(h.level, h.text) for h in doc.headings] == [(1, "Master agreement"), (2, "Payment")]
    for h in doc.headings:
        assert doc.text[h.start : h.start + len(h.text)] == h.text
    assert doc.text.index("The parties agree.") < doc.text.index("Pay on time.")
    assert "Widget | 10" in doc.text


def test_docx_renamed_to_pdf_is_still_docx():
    # The extension never counts: the bytes decide.
    assert sniff(make_docx([(0, "hello")])) == "docx"


def test_epub_follows_spine_and_strips_styles():
    data = make_epub(
        ["<h1>Chapter One</h1><p>It was a dark night.</p>", "<h2>Two</h2><p>Dawn.</p>"]
    )
    assert sniff(data) == "epub"
    doc = extract_document(data)
    assert doc.title == "A Book"
    assert doc.text.index("dark night") < doc.text.index("Dawn.")
    assert "color" not in doc.text
    assert [(h.level, h.text) for h in doc.headings] == [(1, "Chapter One"), (2, "Two")]


@pytest.mark.parametrize("doctype", [
    '<!DOCTYPE html [<!ENTITY nbsp "&#160;">]>',
    '<!doctype html PUBLIC "-//W3C//DTD XHTML 1.1//EN" "xhtml11.dtd" [\n<!ENTITY a "b">\n]>',
    '<!DOCTYPE html>',
])
def test_epub_doctype_with_an_internal_subset_leaves_no_trace(doctype):
    """lxml's HTML parser kept an internal subset's tail "]>" as the chapter's first text."""
    doc = extract_document(make_epub(["<p>It was a dark night.</p>", "<p>Dawn.</p>"],
                                     doctype=doctype))
    assert "]>" not in doc.text and "ENTITY" not in doc.text
    assert doc.text.split() == ["It", "was", "a", "dark", "night.", "Dawn."]


def test_html_headings_and_scripts_stripped():
    html = (
        "<!DOCTYPE html><html><head><title>Annual review</title><style>body{color:red}</style>"
        "<script>var secret = 'leak';</script></head><body><h1>Results</h1>"
        + "".join(
            f"<p>Paragraph {i} describes the results of the year in detail.</p>" for i in range(8)
        )
        + "<h2>Outlook</h2><p>Next year looks steady and calm for everyone.</p>"
        "<script>document.write('tracking')</script></body></html>"
    )
    data = html.encode()
    assert sniff(data) == "html"
    doc = extract_document(data)
    assert doc.title == "Annual review"
    assert "secret" not in doc.text and "tracking" not in doc.text and "color" not in doc.text
    assert "Paragraph 7 describes" in doc.text
    assert ("Results", 1) in [(h.text, h.level) for h in doc.headings]
    assert ("Outlook", 2) in [(h.text, h.level) for h in doc.headings]
    for h in doc.headings:
        assert doc.text[h.start : h.start + len(h.text)] == h.text


def test_tiny_html_keeps_its_text():
    doc = extract_document(b"<html><body><p>Just one line.</p><script>x()</script></body></html>")
    assert doc.text == "Just one line."


def test_markdown_headings_skip_code_blocks():
    md = "# Guide\n\nIntro text.\n\n```\n# not a heading\n```\n\n## Install\n\nRun it.\n"
    data = md.encode()
    assert sniff(data) == "markdown"
    doc = extract_document(data)
    assert doc.title == "Guide"
    assert [(h.level, h.text) for h in doc.headings] == [(1, "Guide"), (2, "Install")]
    for h in doc.headings:
        assert doc.text[h.start : h.start + len(h.text)] == h.text


def test_text_is_normalised():
    raw = "Title line\r\n\r\n\r\n\r\nCafe\u0301 \x07bell\x00\r\nend   \n\n\n\nlast"
    data = raw.encode("utf-8").replace(b"\x00", b"")  # NUL bytes would mean binary
    assert sniff(data) == "text"
    doc = extract_document(data)
    assert doc.text == "Title line\n\nCaf\u00e9 bell\nend\n\nlast"
    assert unicodedata.is_normalized("NFC", doc.text)
    assert doc.title == "Title line"


def test_text_in_legacy_encoding_and_utf16():
    assert extract_document("Café au lait".encode("cp1252")).text == "Café au lait"
    assert extract_document("Grüße aus Köln".encode("utf-16")).text == "Grüße aus Köln"


def test_synthetic_pages_cut_at_paragraphs():
    text = filler_text(20_000, random.Random(3))
    doc = extract_document(text.encode())
    assert doc.synthetic_pages
    starts = [s for s, _ in doc.page_map]
    assert [n for _, n in doc.page_map] == list(range(1, len(starts) + 1))
    assert 5 <= len(starts) <= 9  # ~20k chars / ~3k per page
    for s in starts[1:]:
        assert doc.text[s - 2 : s] == "\n\n"  # every cut is a paragraph boundary
    joined = "".join(
        doc.text[a:b] for a, b in zip(starts, [*starts[1:], len(doc.text)], strict=False)
    )
    assert joined == doc.text


@pytest.mark.parametrize(
    ("data", "kind"),
    [(b"plain words here.", "text"), (b"- a\n- b\n\n[x](http://y)", "markdown")],
)
def test_text_family_sniffing(data, kind):
    assert sniff(data) == kind
