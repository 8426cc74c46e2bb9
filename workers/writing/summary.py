"""The running summary that stands in for the text already written when the window is small.

Extractive, so it costs no generation: for each section written, its planned point and its
opening sentence; older sections shrink to their point first when the budget runs out.
"""

from __future__ import annotations

from workers.writing.length import count_words, sentences

SUMMARY_WORDS = 250


def section_digest(index: int, point: str, text: str, *, sentences_kept: int = 1) -> str:
    opening = " ".join(s.strip() for s in sentences(text)[:sentences_kept] if s.strip())
    return f"Section {index} ({point}): {opening}".strip()


def running_summary(written: list[tuple[int, str, str]], max_words: int = SUMMARY_WORDS) -> str:
    """A summary of ``written`` = [(index, point, text), …] in at most ``max_words`` words.

    Recent sections keep their opening sentence; older ones keep only their point, and the
    oldest are dropped last-resort (the plan still lists every point).
    """
    lines = [section_digest(i, p, t) for i, p, t in written]
    short = [f"Section {i}: {p}" for i, p, _ in written]
    # Shrink from the oldest: full digest → point only → dropped; the last two sections
    # keep their digest (the section being written follows on from them).
    for k in range(max(0, len(lines) - 2)):
        if count_words("\n".join(lines)) <= max_words:
            break
        lines[k] = short[k]
    while lines and count_words("\n".join(lines)) > max_words:
        lines.pop(0)
    return "\n".join(lines)

