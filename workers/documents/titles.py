"""A document's title: its metadata's, else its first heading's, else none — the app then
titles it by its file name. A title is one short line, not a fragment of running text: a
plain-text file's first line is its title only when it reads as a heading (a wrapped line
of prose, "well adapted to the conditions of underground life, and as happy in", or a
transcript's first turn is not)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol


class _Heading(Protocol):  # document.Heading (document.py imports this module)
    text: str

MAX_TITLE_CHARS = 120
MAX_TITLE_WORDS = 14
# Metadata that names no document: an editor's placeholder or a file name (a name ending in
# a document extension: the dot is found by the engine, not after a run of any characters
# retried from every position).
_PLACEHOLDER = re.compile(
    r"(?:untitled|no title|title|document|doc|draft|new document|presentation|slide ?\d{0,3}"
    r"|microsoft (?:word|powerpoint|excel) - [^\n]{0,200}|document ?\d{1,6})", re.IGNORECASE)
_FILE_NAME_END = re.compile(r"\.(?:docx?|pdf|txt|md|html?|rtf|odt|pages|tex)\Z", re.IGNORECASE)
_SENTENCE_INSIDE = re.compile(r"\S\s?[.!?]\s+\S")  # a sentence ends and another begins
_OPENS = re.compile(r"[\"'“‘(\[]?[A-Z0-9À-ÖØ-Þ]")  # a capital or a digit, maybe quoted


def usable(title: str) -> str:
    """``title`` on one line, or "" when it is a placeholder, too long or empty."""
    title = " ".join(title.split())
    if not title or len(title) > MAX_TITLE_CHARS or len(title.split()) > MAX_TITLE_WORDS:
        return ""
    return "" if _PLACEHOLDER.fullmatch(title) or _FILE_NAME_END.search(title) else title


def pick_title(metadata: str, headings: Iterable[_Heading] = ()) -> str:
    """The metadata's title if it names the document, else the first usable heading's."""
    return usable(metadata) or next((t for h in headings if (t := usable(h.text))), "")


def text_heading(text: str) -> str:
    """The first line of a plain text when it stands alone as a heading, else ""."""
    head = text.lstrip("\n")[:400]
    first, _, rest = head.partition("\n")
    line = first.strip()
    if rest and rest.split("\n", 1)[0].strip():
        return ""  # the next line goes on: a paragraph's first line, not a heading
    if not _OPENS.match(line) or line[-1:] in ",;:-–—" or _SENTENCE_INSIDE.search(line):
        return ""
    if line.endswith(".") and len(line.split()) > 3:
        return ""  # a sentence ("Notes." may head a text; "The year was busy." does not)
    return usable(line)
