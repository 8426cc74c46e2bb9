"""Pieces of the engine that need no model: allocation, keywords, fitting, validation."""

from __future__ import annotations

import time

import pytest

from workers.scope import CompressionError, compress
from workers.scope import keywords as kw
from workers.scope.allocation import allocate
from workers.scope.fitting import fit, truncate

from .texts import REPORT


def words(text: str) -> int:
    return len(text.split())


def test_allocation_meets_the_target_and_squeezes_the_least_relevant_hardest():
    sizes, relevance = [200, 200, 200, 200], [0.30, 0.36, 0.33, 0.40]  # cosines
    alloc = allocate(sizes, relevance, 300)
    assert abs(sum(alloc.budgets) - 300) <= 2
    assert not alloc.dropped
    order = sorted(range(4), key=lambda i: alloc.budgets[i])
    assert order == [0, 2, 1, 3]  # budget follows relevance


def test_allocation_drops_the_least_relevant_at_high_ratios():
    sizes, relevance = [100] * 10, [0.2 + i / 50 for i in range(10)]
    alloc = allocate(sizes, relevance, 100)  # 10x: nobody can rewrite 100 tokens into 10
    assert 0 in alloc.dropped and 9 not in alloc.dropped
    assert all(alloc.budgets[i] == 0 for i in alloc.dropped)
    assert abs(sum(alloc.budgets) - 100) <= 2


def test_allocation_never_gives_a_chunk_more_than_its_length():
    alloc = allocate([10, 500], [0.9, 0.1], 400)
    assert alloc.budgets[0] == 10 and abs(alloc.budgets[1] - 390) <= 1


def test_keywords_find_numbers_dates_and_names():
    found = {k for k, _ in kw.candidates(REPORT)}
    for expected in ("1312", "14 February 1996", "42", "Agnes Tillotson", "Kelvidge",
                     "65,000", "Ruth Abernethy", "2 November 1887"):
        assert any(expected in f for f in found), expected
    assert "The" not in found and "Visitors" not in found  # sentence openers are no names


def test_keyword_match_is_whole_word():
    assert kw.contains("He counted 214 seahorses.", "214")
    assert not kw.contains("He counted 2140 seahorses.", "214")
    assert kw.contains("agnes   tillotson led it", "Agnes Tillotson")


def test_chunk_keywords_fit_the_budget():
    few = kw.chunk_keywords(REPORT, [], 20, words)
    many = kw.chunk_keywords(REPORT, [], 400, words)
    assert sum(words(k) for k in few) <= 6 < sum(words(k) for k in many)
    assert kw.RANK  # dates and numbers come first
    assert many[0] in {k for k, kind in kw.candidates(REPORT) if kind == "date"}


def test_fit_keeps_keyword_sentences_within_budget():
    text = ("The weather was mild. Nothing much happened that day. The code is 7731. "
            "People walked around the square slowly.")
    out = fit(text, 8, words, ["7731"])
    assert words(out) <= 8 and "7731" in out


def test_truncate_handles_one_enormous_word():
    assert truncate("x" * 500, 3, lambda s: len(s) // 10 + 1) == "x" * 29


@pytest.mark.parametrize("kwargs, message", [
    ({"ratio": 1}, "greater than 1"),
    ({"ratio": 0.5}, "greater than 1"),
    ({"ratio": -3}, "greater than 1"),
    ({"ratio": 1000}, "absurd"),
    ({"ratio": float("nan")}, "finite"),
    ({"ratio": float("inf")}, "finite"),
    ({"ratio": True}, "finite"),
    ({}, "exactly one"),
    ({"ratio": 2, "target_tokens": 100}, "exactly one"),
    ({"target_tokens": 0}, "too small"),
    ({"target_tokens": 10**40}, "too large: at most 1,000,000"),
    ({"ratio": 10**400}, "absurd"),  # no float form: the check must not need one
    ({"ratio": -(10**400)}, "greater than 1"),
    ({"target_tokens": 2.5}, "whole number"),
    ({"ratio": 2, "method": "magic"}, "unknown method"),
])
def test_bad_targets_are_refused_clearly(kwargs, message):
    with pytest.raises(CompressionError, match=message):
        compress(REPORT, **kwargs)


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("   \n\t ", "empty"),
    (b"some bytes", "bytes"),
    (None, "expected text"),
    ("PK\x03\x04\x00\x00binary", "binary"),
    ("\x01\x02\x03\x04\x05\x06 garbage \x07\x08\x0e\x0f", "binary"),
    ("\ufffd\ufffd\ufffd\ufffd text that failed to decode \ufffd\ufffd", "binary"),
])
def test_bad_texts_are_refused_clearly(text, message):
    with pytest.raises(CompressionError, match=message):
        compress(text, ratio=2)


def test_compression_error_is_a_value_error():
    assert issubclass(CompressionError, ValueError)


@pytest.mark.parametrize(
    "text",
    [
        "Ada Lovelace" + " " * 200_000 + "x",  # a space run after a name: was quadratic
        " ".join(f"Alice{i} met Bob{i}." for i in range(30_000)),  # was a text scan per name
        " ".join(str(n) for n in range(100_000)),  # was a scan of every kept keyword per number
    ],
    ids=["space-run", "many-names", "many-numbers"],
)
def test_keywords_take_linear_time_on_hostile_text(text):
    # The old code took minutes to hours on these; linear code takes well under a second.
    started = time.perf_counter()
    found = kw.candidates(text)
    assert time.perf_counter() - started < 10
    assert found  # it still finds something
