"""Span → page mapping is exact, for real (PDF) and synthetic pages."""

from __future__ import annotations

import random

from workers.documents import extract_document, page_of, pages_for_span
from workers.documents.chunking import chunk_text, whitespace_token_counter
from workers.documents.synth import filler_text, make_text_pdf


def _page_of_each_char(doc) -> list[int]:
    """Brute force: the page of every character, from page_text of each page."""
    owner = [0] * len(doc.text)
    for start, number in doc.page_map:
        for i in range(start, start + len(doc.page_text(number))):
            owner[i] = number
    # Separator characters between pages belong to the page before them.
    last = 1
    for i, page in enumerate(owner):
        owner[i] = last = page or last
    return owner


def test_pdf_span_to_pages_matches_brute_force():
    rng = random.Random(7)
    pages = [filler_text(rng.randint(200, 1500), rng) for _ in range(12)]
    pages[4] = ""  # an empty page holds no characters and is never reported
    doc = extract_document(make_text_pdf(pages))
    owner = _page_of_each_char(doc)
    assert 5 not in owner
    for c in chunk_text(doc.text, whitespace_token_counter, 120):
        expected = sorted(set(owner[c.start : c.end]))
        assert doc.pages_for_span(c.start, c.end) == expected
    for _ in range(300):
        a = rng.randrange(len(doc.text))
        b = rng.randint(a + 1, len(doc.text))
        assert pages_for_span(doc.page_map, a, b) == sorted(set(owner[a:b]))
        assert page_of(doc.page_map, a) == owner[a]


def test_page_text_round_trip_for_pdf():
    pages = ["First page text.", "Second page, longer text here.", "Third."]
    doc = extract_document(make_text_pdf(pages))
    assert [doc.page_text(n) for n in (1, 2, 3)] == pages
    second = doc.text.index("Second")
    assert doc.page_of(second) == 2
    assert doc.pages_for_span(0, second + 3) == [1, 2]


def test_synthetic_pages_map_every_character():
    doc = extract_document(filler_text(12_000, random.Random(1)).encode())
    owner = _page_of_each_char(doc)
    assert owner[0] == 1 and owner[-1] == doc.stats.pages
    assert owner == sorted(owner)
    for a, b in [(0, 1), (100, 5000), (len(doc.text) - 10, len(doc.text))]:
        assert doc.pages_for_span(a, b) == sorted(set(owner[a:b]))
