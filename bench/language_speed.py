"""What languages cost at ingest: sentences (ICU) of 1M words of English and ~1M characters
of Chinese, the detector's load and one detection, CJK bigrams.

    python -m bench.language_speed

Prints one line per figure (seconds, wall clock); docs/documents.md, *Languages*.
"""

from __future__ import annotations

import random
import time

from workers.documents.chunking import sentence_spans
from workers.documents.language import cjk_index_text, detect_language

WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while", "Mr.",
         "Smith", "reads", "chapter", "3.5", "of", "the", "report"]
CHINESE = ("市场广场上的老房子是十八世纪由富商建造的。"
           "如今住在那里的主要是有孩子的家庭，租金也上涨了！")


def main() -> None:
    rng = random.Random(1)
    english = " ".join(rng.choice(WORDS) + ("." if rng.random() < 0.07 else "")
                       for _ in range(1_000_000))
    chinese = CHINESE * 24_000
    for name, text, language in (("en, 1M words", english, "en"),
                                 ("zh, ~1M characters", chinese, "zh")):
        start = time.perf_counter()
        count = sum(1 for _ in sentence_spans(text, language))
        print(f"sentences {name}: {len(text):,} chars, {count:,} sentences, "
              f"{time.perf_counter() - start:.2f} s")
    start = time.perf_counter()
    detect_language(CHINESE)
    print(f"detector load + first detection: {time.perf_counter() - start:.2f} s")
    start = time.perf_counter()
    language = detect_language(english)
    print(f"detection of the 1M-word text ({language}): {time.perf_counter() - start:.3f} s")
    start = time.perf_counter()
    cjk_index_text(chinese)
    print(f"CJK bigrams of {len(chinese):,} characters: {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
