"""Text normalisation shared by every extractor, so offsets mean the same thing everywhere."""

from __future__ import annotations

import re
import unicodedata

# C0/C1 control characters except tab and newline; NUL included. Form feed and vertical tab
# become newlines first (they are page/line breaks in plain-text exports).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\ufeff]")
_BLANK_RUNS = re.compile(r"\n{3,}")
_WORD = re.compile(r"\w+")


def normalize_text(text: str) -> str:
    """NFC, ``\\n`` newlines, no control chars, no trailing spaces, at most one blank line."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\f", "\n\n").replace("\v", "\n").replace("\u2028", "\n")
    text = text.replace("\u2029", "\n\n").replace("\u00a0", " ")
    text = _CONTROL.sub("", text)
    text = unicodedata.normalize("NFC", text)
    # Per line, not r"[ \t]+\n": that regex rescans a run of spaces from each of its
    # positions when no newline follows, which is quadratic (a 1 MB run: hours).
    text = "\n".join(line.rstrip(" \t") for line in text.split("\n"))
    text = _BLANK_RUNS.sub("\n\n", text)
    return text.strip()


def count_words(text: str) -> int:
    return sum(1 for _ in _WORD.finditer(text))
