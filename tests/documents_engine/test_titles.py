"""A document's title from the file itself: metadata, first heading, or a plain text's first
line only when that line stands alone as a heading."""

from __future__ import annotations

import pytest

from tests.documents_engine import builders as b
from workers.documents import extract_document
from workers.documents.titles import text_heading, usable


@pytest.mark.parametrize("text", [
    # a wrapped line of prose (the first line of a scanned book's page)
    "well adapted to the conditions of underground life, and as happy in\nthe dark as we are",
    # a transcript's first turn
    "Professor B: Be pretty simple . I mean , you do it in a pretty conservative way\n\n"
    "Grad A: Right.",
    # a first paragraph that is one sentence
    "The harbour was busier this year than in any year before.\n\nTraffic grew.",
    "The year was busy.\n\nTraffic grew.",
    # a line that goes on after a comma or a colon
    "Minutes of the meeting held on Tuesday,\n\nattended by",
    "",
])
def test_prose_is_not_a_title(text):
    assert text_heading(text) == ""


@pytest.mark.parametrize(("text", "title"), [
    ("How to Start a Startup\n\nMarch 2005\n\nYou need three things.", "How to Start a Startup"),
    ("HARBOUR BOARD ANNUAL REPORT 2023\n\nThe harbour's northern quay was rebuilt.",
     "HARBOUR BOARD ANNUAL REPORT 2023"),
    ("Chapter 1: The Beginning\n\nIt was a cold morning.", "Chapter 1: The Beginning"),
    ("\n\n  Notes.  \n\nbody", "Notes."),
    ("“Why Nerds Are Unpopular”\n\nWhen we were in junior high school…",
     "“Why Nerds Are Unpopular”"),
])
def test_a_heading_line_is_the_title(text, title):
    assert text_heading(text) == title


@pytest.mark.parametrize("metadata", ["Microsoft Word - final report v2.docx", "Untitled",
                                      "report.pdf", "Document1", "  ", "x " * 30])
def test_placeholder_metadata_names_no_document(metadata):
    assert usable(metadata) == ""


def test_docx_placeholder_title_gives_way_to_its_first_heading():
    data = b.make_docx([(1, "Supply agreement"), (0, "The parties agree.")],
                       title="Microsoft Word - contract.docx")
    assert extract_document(data).title == "Supply agreement"


def test_text_file_of_prose_has_no_title_so_the_app_uses_the_file_name():
    data = b"well adapted to the conditions of underground life, and as happy in\nthe dark.\n"
    assert extract_document(data).title == ""
