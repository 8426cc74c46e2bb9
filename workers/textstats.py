"""Word statistics of a text, computed paragraph by paragraph.

The smallest real job kind: it proves the path browser → job row → broker → worker →
progress → result, with cancellation between steps.
"""

from __future__ import annotations

import re
import time
from collections import Counter

from workers.progress import Progress, no_progress

_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*", re.UNICODE)
# Only from the start of a run of stops (the lookbehind), taken whole (possessive): without
# both, a long run of dots not followed by a space is rescanned from each of its positions.
_SENTENCE_END = re.compile(r"(?<![.!?…])[.!?…]++(?=\s|$)")


def paragraphs(text: str) -> list[str]:
    return [p for p in re.split(r"\n\s*\n", text) if p.strip()]


def word_stats(
    text: str, progress: Progress = no_progress, step_delay: float = 0.0, top: int = 10
) -> dict:
    """Counts words, sentences, paragraphs and the most frequent words.

    `step_delay` slows each paragraph down (a demo setting, so the bar visibly moves).
    """
    if not text.strip():
        raise ValueError("The text is empty: there is nothing to count.")
    parts = paragraphs(text)
    total = max(len(parts), 1)
    counts: Counter[str] = Counter()
    words = sentences = characters = 0
    progress(0, total, "Counting words")
    for index, part in enumerate(parts, start=1):
        found = _WORD.findall(part)
        words += len(found)
        counts.update(w.lower() for w in found)
        sentences += max(len(_SENTENCE_END.findall(part)), 1)
        characters += len(part)
        if step_delay:
            time.sleep(step_delay)
        progress(index, total, f"Paragraph {index} of {total}")
    return {
        "words": words,
        "unique_words": len(counts),
        "sentences": sentences,
        "paragraphs": len(parts),
        "characters": characters,
        "top_words": counts.most_common(top),
    }
