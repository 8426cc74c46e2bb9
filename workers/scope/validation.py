"""Refusals of bad input, each with a message a user can act on."""

from __future__ import annotations

import math

from .types import CompressionError

METHODS = ("scope", "deletion")
# The bounds of a compression target, checked here for every caller (the Compress page's
# form, the API's compress items, the engine itself).
MAX_RATIO = 100.0  # beyond this nothing of the text is left worth reading
MIN_TARGET_TOKENS = 4
MAX_TARGET_TOKENS = 1_000_000  # more than any model's context: the result is a prompt
# Share of control characters (other than whitespace) above which "text" is binary.
_BINARY_SHARE = 0.01


def check_text(text: object) -> str:
    if isinstance(text, bytes | bytearray):
        raise CompressionError("expected text, got bytes: decode the file or paste its text")
    if not isinstance(text, str):
        raise CompressionError(f"expected text, got {type(text).__name__}")
    if not text.strip():
        raise CompressionError("the text is empty: there is nothing to compress")
    if "\x00" in text:
        raise CompressionError("this looks like binary content (NUL bytes), not text")
    sample = text[:100_000]
    control = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\n\r\t\f\v")
    replaced = sample.count("\ufffd")
    if (control + replaced) > _BINARY_SHARE * len(sample) + 2:
        raise CompressionError(
            "this looks like binary or garbled content (control or undecodable characters), "
            "not text"
        )
    return text


def check_method(method: str) -> str:
    if method not in METHODS:
        raise CompressionError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    return method


def check_target(ratio: float | None, target_tokens: int | None) -> None:
    """Exactly one of a ratio in (1, MAX_RATIO] or a token budget in
    [MIN_TARGET_TOKENS, MAX_TARGET_TOKENS]. The value is not echoed in the messages: an
    integer of hundreds of digits (valid JSON) has no float form to print."""
    if (ratio is None) == (target_tokens is None):
        raise CompressionError("give exactly one of a ratio or a token budget")
    if ratio is not None:
        number = isinstance(ratio, int | float) and not isinstance(ratio, bool)
        if not number or (isinstance(ratio, float) and not math.isfinite(ratio)):
            raise CompressionError("the ratio must be a finite number such as 2, 3 or 5")
        if ratio <= 1:
            raise CompressionError("the ratio must be greater than 1: 2 means half as long")
        if ratio > MAX_RATIO:
            raise CompressionError(
                f"a ratio above {MAX_RATIO:g} is absurd: nothing worth reading would be left"
            )
    if target_tokens is not None:
        if isinstance(target_tokens, bool) or not isinstance(target_tokens, int):
            raise CompressionError("the token budget must be a whole number")
        if target_tokens < MIN_TARGET_TOKENS:
            raise CompressionError(
                f"the token budget is too small: at least {MIN_TARGET_TOKENS} tokens are needed"
            )
        if target_tokens > MAX_TARGET_TOKENS:
            raise CompressionError(
                f"the token budget is too large: at most {MAX_TARGET_TOKENS:,} tokens"
            )
