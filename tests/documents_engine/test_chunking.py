"""Chunk spans are exact, sizes respected, boundaries are sentences, and the work is linear."""

from __future__ import annotations

import inspect
import random
import re

import pytest

from workers.documents.chunking import chunk_text, segments, whitespace_token_counter
from workers.documents.synth import filler_text

WC = whitespace_token_counter


@pytest.fixture(scope="module")
def text() -> str:
    return filler_text(40_000, random.Random(11))


@pytest.mark.parametrize("max_tokens", [20, 64, 300])
def test_spans_exact_and_within_budget(text, max_tokens):
    chunks = chunk_text(text, WC, max_tokens)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert text[c.start : c.end] == c.text
        assert c.tokens == WC(c.text) <= max_tokens
    # Without overlap the chunks cover the text in order with only whitespace between them.
    for prev, nxt in zip(chunks, chunks[1:], strict=False):
        assert prev.end <= nxt.start
        assert text[prev.end : nxt.start].strip() == ""
    assert chunks[0].start == 0 and chunks[-1].end == len(text.rstrip())


def test_chunks_end_on_sentence_boundaries(text):
    for c in chunk_text(text, WC, 64):
        assert re.search(r"[.!?]$", c.text), c.text[-40:]


def test_overlap_repeats_whole_trailing_sentences(text):
    chunks = chunk_text(text, WC, 80, overlap_tokens=25)
    overlapping = 0
    for prev, nxt in zip(chunks, chunks[1:], strict=False):
        assert nxt.start > prev.start  # always progresses
        if nxt.start < prev.end:
            overlapping += 1
            shared = text[nxt.start : prev.end]
            assert WC(shared) <= 25
            assert re.search(r"[.!?]$", shared)
    assert overlapping > len(chunks) // 2
    for c in chunks:
        assert text[c.start : c.end] == c.text and c.tokens <= 80


def test_long_sentence_is_cut_at_whitespace():
    text = " ".join(f"w{i}" for i in range(1000))  # one sentence, 1000 tokens
    chunks = chunk_text(text, WC, 100)
    assert all(c.tokens <= 100 for c in chunks)
    assert " ".join(c.text for c in chunks) == text


def test_segments_are_lazy_and_window_sized(text):
    calls = []

    def counting(s: str) -> int:
        calls.append(len(s))
        return WC(s)

    gen = segments(text, 500, counting)
    assert inspect.isgenerator(gen)
    first = next(gen)
    assert first.start == 0 and 400 < first.tokens <= 500
    # Only the text needed for the first segment was looked at.
    assert sum(calls) < len(text) / 2
    rest = list(gen)
    assert rest[-1].end == len(text.rstrip())


def test_work_is_linear_in_text_length():
    """Characters handed to the tokenizer grow linearly: no quadratic re-counting."""
    rng = random.Random(5)
    base = filler_text(200_000, rng)
    seen = {}
    for copies in (1, 4):
        total = 0

        def counting(s: str) -> int:
            nonlocal total
            total += len(s)
            return WC(s)

        big = "\n\n".join([base] * copies)
        chunk_text(big, counting, 256, overlap_tokens=32)
        seen[copies] = total / len(big)
    # Each char is counted about twice (once per sentence, once per chunk check).
    assert seen[1] < 3 and seen[4] < 3


def test_invalid_sizes():
    with pytest.raises(ValueError):
        chunk_text("a b", WC, 0)
    with pytest.raises(ValueError):
        chunk_text("a b", WC, 10, overlap_tokens=10)
