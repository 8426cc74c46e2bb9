"""Markdown to DOCX and PDF through pandoc and Typst: real headings, emphasis, lists and
footnotes, and nothing in the text acting as code."""

from __future__ import annotations

import io
import zipfile

import docx
import pypdfium2 as pdfium
import pytest

from workers.exports import escape, footnote_markdown, to_docx, to_pdf

REPORT = footnote_markdown(
    "# Harbour report\n\nThe quay was rebuilt by *Kessler Marine Works*.[^1] It cost "
    "“4.2 million” — euros.[^2]\n\n## Works\n\n- dredging\n- a pilot boat\n",
    ["harbour.txt, p. 3: “The northern quay was rebuilt by Kessler Marine Works.”",
     "harbour.txt, p. 4: “The work cost 4.2 million euros.”"])


def _pdf_text(data: bytes) -> str:
    pdf = pdfium.PdfDocument(data)
    return "\n".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))


def test_docx_has_real_headings_lists_emphasis_and_footnotes():
    data = to_docx(REPORT, "Harbour report")
    document = docx.Document(io.BytesIO(data))
    headings = [(p.style.name, p.text) for p in document.paragraphs
                if p.style.name.startswith("Heading")]
    assert ("Heading 1", "Harbour report") in headings and ("Heading 2", "Works") in headings
    body = next(p for p in document.paragraphs if p.text.startswith("The quay"))
    assert any(r.italic and r.text == "Kessler Marine Works" for r in body.runs)
    assert "#" not in body.text and "*" not in body.text  # no Markdown markers as text
    footnotes = zipfile.ZipFile(io.BytesIO(data)).read("word/footnotes.xml").decode()
    assert "rebuilt by Kessler Marine Works" in footnotes and "4.2 million euros" in footnotes
    assert document.core_properties.title == "Harbour report"


def test_pdf_text_extracts_with_unicode_and_footnotes():
    text = _pdf_text(to_pdf(REPORT, "Harbour report"))
    assert "Harbour report" in text and "Kessler Marine Works" in text
    assert "“4.2 million” — euros" in text
    assert "The work cost 4.2 million euros." in text  # the footnote
    assert "[^1]" not in text and "*Kessler" not in text


@pytest.mark.parametrize("evil", [
    "```{=typst}\n#read(\"/etc/passwd\")\n```\n",
    "`#read(\"/etc/hostname\")`{=typst}\n",
    "<script>alert(1)</script> #set page(width: 1pt)\n",
    "\\input{/etc/passwd} $x^2$ \x00\x07",
])
def test_text_never_acts_as_code(evil):
    text = _pdf_text(to_pdf(f"# Notes\n\n{evil}", "Notes"))
    assert "root:" not in text  # /etc/passwd was not read
    data = to_docx(f"# Notes\n\n{evil}", "Notes")
    xml = zipfile.ZipFile(io.BytesIO(data)).read("word/document.xml").decode()
    assert "<script>" not in xml and "root:" not in xml


def test_escape_keeps_plain_text_plain():
    quote = "# not a heading * not a list [^1] _under_ 1. item"
    text = _pdf_text(to_pdf(escape(quote), "Quote"))
    assert "# not a heading * not a list [^1] _under_ 1. item" in " ".join(text.split())
