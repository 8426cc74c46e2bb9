"""The extraction result: normalised text, a page map, headings and stats.

Offsets are indices into ``ExtractedDocument.text`` (Python str indices, i.e. code points),
so ``text[start:end]`` of any chunk maps back to its pages with ``pages_for_span``.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field

from .normalize import count_words, normalize_text
from .titles import pick_title

PAGE_SEPARATOR = "\n\n"


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    start: int  # offset of the heading text in the document text


@dataclass(frozen=True)
class DocumentStats:
    pages: int
    words: int
    chars: int


@dataclass
class ExtractedDocument:
    kind: str
    text: str
    # (start_char, page_number), sorted by start; page numbers start at 1.
    page_map: list[tuple[int, int]]
    title: str = ""
    headings: list[Heading] = field(default_factory=list)
    synthetic_pages: bool = False
    # Pages (1-based) whose text OCR read, and pages without a text layer that OCR could not
    # (slow_pages: those of them it could not read within the time limit for a page).
    ocr_pages: list[int] = field(default_factory=list)
    unreadable_pages: list[int] = field(default_factory=list)
    slow_pages: list[int] = field(default_factory=list)

    @property
    def stats(self) -> DocumentStats:
        return DocumentStats(
            pages=len(self.page_map), words=count_words(self.text), chars=len(self.text)
        )

    def page_of(self, offset: int) -> int:
        return page_of(self.page_map, offset)

    def pages_for_span(self, start: int, end: int) -> list[int]:
        return pages_for_span(self.page_map, start, end)

    def page_text(self, page_number: int) -> str:
        return page_text(self.text, self.page_map, page_number)


def page_of(page_map: list[tuple[int, int]], offset: int) -> int:
    """The page holding character ``offset``."""
    if not page_map:
        raise ValueError("empty page map")
    starts = [s for s, _ in page_map]
    index = bisect_right(starts, offset) - 1
    return page_map[max(index, 0)][1]


def pages_for_span(page_map: list[tuple[int, int]], start: int, end: int) -> list[int]:
    """Every page that ``text[start:end]`` touches, in order (``end`` is exclusive)."""
    if end <= start:
        return [page_of(page_map, start)]
    starts = [s for s, _ in page_map]
    first = max(bisect_right(starts, start) - 1, 0)
    last = max(bisect_right(starts, end - 1) - 1, 0)
    # Empty pages share a start with the next page; they hold no characters, so skip them.
    return [
        number
        for i, (s, number) in enumerate(page_map[first : last + 1], start=first)
        if i == last or page_map[i + 1][0] > s
    ]


def page_text(text: str, page_map: list[tuple[int, int]], page_number: int) -> str:
    for i, (start, number) in enumerate(page_map):
        if number == page_number:
            end = page_map[i + 1][0] if i + 1 < len(page_map) else len(text)
            return text[start:end].rstrip("\n")
    raise IndexError(f"no page {page_number}")


def from_pages(
    kind: str,
    pages: list[str],
    title: str = "",
    headings_per_page: list[list[tuple[int, str, int]]] | None = None,
) -> ExtractedDocument:
    """Join real pages (already extracted, not yet normalised), recording where each starts.

    ``headings_per_page`` holds (level, text, offset-in-normalised-page) per page.
    """
    parts: list[str] = []
    page_map: list[tuple[int, int]] = []
    headings: list[Heading] = []
    offset = 0
    for number, raw in enumerate(pages, start=1):
        page = normalize_text(raw)
        page_map.append((offset, number))
        if headings_per_page:
            page_headings = headings_per_page[number - 1]
            headings.extend(Heading(lv, t, offset + o) for lv, t, o in page_headings)
        if page:
            parts.append(page)
            offset += len(page) + len(PAGE_SEPARATOR)
    text = PAGE_SEPARATOR.join(parts)
    # Trailing empty pages start past the end; clamp so they stay valid offsets.
    page_map = [(min(s, len(text)), n) for s, n in page_map]
    return ExtractedDocument(
        kind=kind, text=text, page_map=page_map, title=title, headings=headings
    )


def synthetic_page_map(text: str, page_chars: int = 3_000) -> list[tuple[int, int]]:
    """Pages of about ``page_chars`` characters, cut at a paragraph, line or word boundary.

    Each cut looks back from the target within the last half page only, so this is linear
    even for a 10 MB text without a single newline.
    """
    page_map = [(0, 1)]
    start = 0
    n = len(text)
    while n - start > page_chars:
        target = start + page_chars
        lo = start + page_chars // 2
        cut = -1
        for sep in ("\n\n", "\n", " "):
            pos = text.rfind(sep, lo, target)
            if pos != -1:
                cut = pos + len(sep)
                break
        if cut == -1:
            cut = target
        page_map.append((cut, len(page_map) + 1))
        start = cut
    return page_map


def from_text(
    kind: str,
    text: str,
    title: str = "",
    headings: list[Heading] | None = None,
    page_chars: int = 3_000,
) -> ExtractedDocument:
    """A document from already-normalised text without real pages."""
    return ExtractedDocument(
        kind=kind,
        text=text,
        page_map=synthetic_page_map(text, page_chars),
        title=title,
        headings=headings or [],
        synthetic_pages=True,
    )


def from_blocks(
    kind: str,
    blocks: list[tuple[int, str]],
    title: str = "",
    page_chars: int = 3_000,
) -> ExtractedDocument:
    """Join (heading_level, text) blocks as paragraphs; level 0 is body text.

    Each block is normalised on its own so heading offsets are exact in the joined text.
    """
    parts: list[str] = []
    headings: list[Heading] = []
    offset = 0
    for level, raw in blocks:
        block = normalize_text(raw)
        if not block:
            continue
        if level:
            block = " ".join(block.split())  # a heading is one line
            headings.append(Heading(level, block, offset))
        parts.append(block)
        offset += len(block) + len(PAGE_SEPARATOR)
    text = PAGE_SEPARATOR.join(parts)
    return from_text(kind, text, title=pick_title(title, headings), headings=headings,
                     page_chars=page_chars)
