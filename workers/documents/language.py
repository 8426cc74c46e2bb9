"""A text's language, and the script-aware pieces of lexical search that depend on it.

``detect_language``: the ISO 639-1 code of a document's language ("" when undetermined), by
py3langid (a naive-Bayes n-gram model shipped inside the package: offline, deterministic).
``cjk_index_text`` / ``cjk_terms``: Chinese and Japanese are written without spaces between
words and Korean agglutinates; Postgres has no parser for them and a BM25 tokenizer would
see a whole clause as one word. Such runs are indexed as overlapping character bigrams (as
Lucene's CJK analyser does), and a query is cut the same way, so a two-character word of
the query meets the same token in the text.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache

# Han (with extensions and compatibility ideographs), the iteration mark 々, Hiragana,
# Katakana (with half-width forms and phonetic extensions) and Hangul.
CJK_CHARS = (
    "\u1100-\u11ff\u3005\u3040-\u30ff\u3130-\u318f\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f"
)
_CJK_RUN = re.compile(f"[{CJK_CHARS}]+")

# Detection reads a few evenly spaced windows and lets them vote: one window is cheap, a
# document may mix languages (an English abstract to a German thesis), and py3langid's
# normalised confidence degrades over very long inputs (measured: 0.99 at 10k chars of
# German, 0.69 at 100k).
SAMPLE_WINDOWS = 8
WINDOW_CHARS = 1_000
MIN_LETTERS = 20  # a window with fewer letters (a table of numbers) does not vote
MIN_CONFIDENCE = 0.5


@lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier  # loads in ~4 s: once

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def _windows(text: str) -> list[str]:
    if len(text) <= SAMPLE_WINDOWS * WINDOW_CHARS:
        return [text[i:i + WINDOW_CHARS] for i in range(0, len(text), WINDOW_CHARS)]
    step = (len(text) - WINDOW_CHARS) // (SAMPLE_WINDOWS - 1)
    return [text[i * step:i * step + WINDOW_CHARS] for i in range(SAMPLE_WINDOWS)]


def detect_language(text: str) -> str:
    """ISO 639-1 code of the language most of the text is in; "" if no language has the
    confident vote of more than half of the windows with enough letters."""
    votes: Counter[str] = Counter()
    counted = 0
    for window in _windows(text):
        if sum(ch.isalpha() for ch in window) < MIN_LETTERS:
            continue
        counted += 1
        language, confidence = _identifier().classify(window)
        if confidence >= MIN_CONFIDENCE and len(language) == 2:
            votes[language] += 1
    if not votes:
        return ""
    language, count = votes.most_common(1)[0]
    return language if 2 * count > counted else ""


def cjk_terms(run: str) -> list[str]:
    """The overlapping bigrams of a CJK run (a lone character stands for itself)."""
    return [run] if len(run) < 2 else [run[i:i + 2] for i in range(len(run) - 1)]


def has_cjk(text: str) -> bool:
    return _CJK_RUN.search(text) is not None


def cjk_runs(text: str) -> list[str]:
    return _CJK_RUN.findall(text)


def without_cjk(text: str) -> str:
    """The text with its CJK runs blanked out (what word-based parsers should read)."""
    return _CJK_RUN.sub(" ", text)


def cjk_index_text(text: str) -> str:
    """The text to index lexically: every CJK run replaced by its bigrams, separated by
    spaces from each other and from the words around it; other text unchanged."""
    if not has_cjk(text):
        return text
    return _CJK_RUN.sub(lambda m: " " + " ".join(cjk_terms(m.group())) + " ", text)
