"""Needle-in-a-haystack builder (the benchmark, the tests and the app's self-test page).

Filler: Paul Graham essays when a folder is given (or the default shared folder exists),
generated prose otherwise. The needle goes on a sentence boundary at the chosen depth.
*Paraphrased* needles share no content word with the question, so lexical search cannot
find them by overlap: only a model-based relevance score (XL3M, CoA) can.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from workers.documents.chunking import sentence_spans
from workers.documents.synth import filler_text, load_essays

DEFAULT_ESSAYS = Path("/work/shared/data/pg_essays")
KINDS = ("passkey", "needle")

PASSKEY_QUESTION = "What is the pass key?"
PASSKEY_NEEDLE = "The pass key is {key}. Remember it. {key} is the pass key."
PASSKEY_PARAPHRASES = (
    "To open the archive door, type the digits {key}.",
    "The lock on the old shed opens with the sequence {key}.",
    "Whoever wants the safe to open must enter {key} on its dial.",
)
# (answer, needle, paraphrased needle, question)
NEEDLES = (
    (
        "smoked paprika",
        "The secret ingredient of grandmother's soup was smoked paprika.",
        "Granny always flavoured her broth with smoked paprika.",
        "What was the secret ingredient of grandmother's soup?",
    ),
    (
        "Dolores Park",
        "The best place to eat a sandwich in San Francisco is Dolores Park.",
        "Lunch on the grass at Dolores Park beats every other spot in the city by the bay.",
        "What is the best place to eat a sandwich in San Francisco?",
    ),
    (
        "green bicycle",
        "The present Marta got for her tenth birthday was a green bicycle.",
        "When the girl turned ten, her parents surprised her with a green bicycle.",
        "What present did Marta get for her tenth birthday?",
    ),
)

STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "of",
        "to",
        "in",
        "on",
        "at",
        "for",
        "with",
        "by",
        "from",
        "and",
        "or",
        "but",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "did",
        "do",
        "does",
        "her",
        "his",
        "its",
        "their",
        "our",
        "your",
        "my",
        "this",
        "that",
        "it",
        "as",
        "into",
        "than",
        "then",
        "so",
        "if",
        "not",
        "no",
        "any",
        "every",
        "other",
        "must",
        "get",
        "got",
    ]
)


def content_words(text: str) -> set[str]:
    words = re.findall(r"[a-z]+", text.lower().replace("'s", ""))
    return {w for w in words if w not in STOPWORDS and len(w) > 1}


@dataclass(frozen=True)
class Haystack:
    text: str
    question: str
    answer: str
    needle: str
    needle_start: int
    needle_end: int
    depth: float
    tokens: int
    kind: str
    paraphrased: bool
    filler: str  # "pg_essays" or "generated"

    def is_correct(self, answer_text: str) -> bool:
        """The expected answer is in ``answer_text`` (every word of it, any case)."""
        if self.kind == "passkey":
            return re.search(rf"(?<!\d){re.escape(self.answer)}(?!\d)", answer_text) is not None
        return all(w in answer_text.lower() for w in content_words(self.answer))


def _estimate(text: str) -> int:
    return max(1, len(text) // 4)


def build_haystack(
    target_tokens: int,
    *,
    depth: float | None = None,
    kind: str = "passkey",
    paraphrase: bool = False,
    seed: int = 0,
    essays_dir: str | Path | None = None,
    count_tokens: Callable[[str], int] | None = None,
) -> Haystack:
    """A text of about ``target_tokens`` (exact-ish with ``count_tokens``, else ~4 chars per
    token) with one needle at ``depth`` (0 = start, 1 = end; random when None)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    if target_tokens < 50:
        raise ValueError("target_tokens must be at least 50")
    rng = random.Random(seed)
    depth = rng.random() if depth is None else min(max(depth, 0.0), 1.0)
    if kind == "passkey":
        key = str(rng.randint(10000, 99999))
        template = rng.choice(PASSKEY_PARAPHRASES) if paraphrase else PASSKEY_NEEDLE
        needle, question, expected = template.format(key=key), PASSKEY_QUESTION, key
    else:
        expected, direct, para, question = rng.choice(NEEDLES)
        needle = para if paraphrase else direct
    folder = essays_dir if essays_dir is not None else DEFAULT_ESSAYS
    essays = load_essays(folder)
    count = count_tokens or _estimate
    filler_seed = rng.randrange(1 << 30)
    room = max(10, target_tokens - count(needle))
    chars = room * 4
    filler = filler_text(chars, random.Random(filler_seed), essays)
    for _ in range(2):  # rescale once or twice by the measured chars per token
        measured = count(filler)
        if abs(measured - room) <= max(20, room // 50):
            break
        chars = max(200, int(len(filler) * room / max(1, measured)))
        filler = filler_text(chars, random.Random(filler_seed), essays)
    # Insert before the sentence nearest to the depth (or at the very end).
    target = int(depth * len(filler))
    starts = [s for s, _ in sentence_spans(filler)] + [len(filler)]
    at = min(starts, key=lambda s: abs(s - target))
    if at >= len(filler):
        text = filler.rstrip() + " " + needle
        start = len(filler.rstrip()) + 1
    else:
        text = filler[:at] + needle + " " + filler[at:]
        start = at
    return Haystack(
        text=text,
        question=question,
        answer=expected,
        needle=needle,
        needle_start=start,
        needle_end=start + len(needle),
        depth=depth,
        tokens=count(text),
        kind=kind,
        paraphrased=paraphrase,
        filler="pg_essays" if essays else "generated",
    )
