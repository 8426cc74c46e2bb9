"""The words a writing instruction is read with: numbers spelled out, the units a text is
divided into, stop words, and a light stemmer with the keyword and mention tests that the
plan check (coverage.py), the section checks (checks.py) and the quality bench share."""

from __future__ import annotations

import re

NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "a dozen": 12,
}
ORDINAL_STEP = {"other": 2, "second": 2, "third": 3, "fourth": 4, "fifth": 5}
# A unit the text is divided into, singular → plural forms accepted.
UNIT_NOUNS = ("chapter", "section", "part", "entry", "letter", "episode", "post", "scene",
              "lesson", "article", "installment", "instalment", "day", "week", "month",
              "paragraph", "stage", "step", "session", "issue")
# A period and how many of it make a year ("week 60 of the year" is impossible).
PER_YEAR = {"day": 365, "week": 52, "month": 12, "quarter": 4, "season": 4}

_STOP_WORDS = """a an the and or of to in on at for with by from as is are be been being it its
this that these those what which who whom how why when where do does did doing done can could
should would will shall may might must about into over under than then there their them they
you your we our us i me my he she his her him not no yes so such also each every any all some
new first last next more most very just only own same other write writing text piece guide
essay article story report include includes including cover covers covering section sections
chapter chapters part parts entry entries word words please make use using one two three
"""
STOP = frozenset(_STOP_WORDS.split())

# Regular-expression alternatives: a number (digits or words), a unit, a unit's plural.
NUMBER = r"(?:\d{1,6}|" + "|".join(sorted(NUMBER_WORDS, key=len, reverse=True)) + r")"
UNIT = r"(?:" + "|".join(UNIT_NOUNS) + r")"
PLURALS = {u: u[:-1] + "ies" if u == "entry" else u + "s" for u in UNIT_NOUNS}
UNITS = r"(?:" + "|".join(PLURALS.values()) + r")"
TOKEN = re.compile(r"[^\W_]{2,40}")


def keywords(text: str) -> list[str]:
    """Content words of a phrase, stemmed lightly, in order, without repeats."""
    out: list[str] = []
    for word in TOKEN.findall(text.lower()):
        if word in STOP or word.isdigit():
            continue
        stem = stem_word(word)
        if stem not in out:
            out.append(stem)
    return out


def stem_word(word: str) -> str:
    """A light stem, so that "inspections" meets "inspection" and "wintering" "winter"."""
    for suffix in ("ings", "ing", "ies", "es", "s", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            word = word[: -len(suffix)]
            return word + "y" if suffix == "ies" else word
    return word


def text_stems(text: str) -> set[str]:
    return {stem_word(w) for w in TOKEN.findall(text.lower())}


def mentions(text: str, words: list[str], share: float = 0.5) -> bool:
    """Whether ``text`` holds at least ``share`` of the stems ``words`` (and at least one)."""
    if not words:
        return True
    found = text_stems(text)
    hits = sum(1 for w in words if w in found)
    return hits >= max(1, round(share * len(words) + 1e-9))

