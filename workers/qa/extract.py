"""Answer-span extraction: do not rely on a small model to copy a key out of a context.

For questions whose answer is a token (a pass key, number, code, PIN), the answer is
picked from the best-ranked evidence sentence instead; the model's draft only breaks ties
between the candidates of that sentence. Other questions keep the model's answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_CODE_QUESTION = re.compile(
    r"\b(pass\s?keys?|passcodes?|passwords?|pins?|codes?|numbers?|digits?|combinations?|"
    r"serials?|keys? to)\b",
    re.IGNORECASE,
)
# Numbers of two or more digits (with inner separators: 1,024 / 7-3-9 / 3.25), and
# letter-digit codes such as X7K-29Q.
_CANDIDATE = re.compile(
    r"(?<![\w.,-])(?:\d[\d,.\-]*\d|(?=[A-Za-z0-9-]*\d)(?=[A-Za-z0-9-]*[A-Za-z])[A-Za-z0-9]"
    r"[A-Za-z0-9-]{2,}[A-Za-z0-9])(?![\w])"
)


# Questions for an identifier (not a quantity): its answer is a code of 4+ characters.
_IDENTIFIER_QUESTION = re.compile(
    r"\b(pass\s?keys?|passcodes?|passwords?|pins?|codes?|combinations?|serials?|keys? to)\b",
    re.IGNORECASE,
)
MIN_IDENTIFIER_CHARS = 4
IDENTIFIER_DEPTH = 5  # identifier questions look a little deeper (the key context's size)


def wants_identifier(question: str) -> bool:
    """Is the answer a key / code / password / PIN (not a quantity)?"""
    return bool(_IDENTIFIER_QUESTION.search(question))


def wants_token(question: str) -> bool:
    """Is the answer a key/number/code that can be picked out of a sentence verbatim?"""
    return bool(_CODE_QUESTION.search(question))


# A number glued to the capitalised word after it ("April 2004To the popular press"): two
# pieces of text joined without a space, not a code. Only the number counts.
_GLUED = re.compile(r"(?<!\d)(\d{2,}+)[A-Z][a-z]+")  # a digit run read once, not per digit
# A plausible year: the weakest kind of identifier (a date line, "in 1998").
_YEAR = re.compile(r"1[5-9]\d\d|20\d\d")


def candidates(text: str) -> list[str]:
    """Candidate answer tokens in ``text``, in order, without repeats."""
    seen: dict[str, None] = {}
    for m in _CANDIDATE.finditer(text):
        token = m.group(0).strip(".,-")
        glued = _GLUED.fullmatch(token)
        seen.setdefault(glued.group(1) if glued else token, None)
    return [c for c in seen if c]


@dataclass(frozen=True)
class Extraction:
    value: str
    sentence_rank: int  # 0 = the best-ranked sentence
    agreed_with_model: bool


def extract_token(
    question: str, ranked_sentences: Sequence[str], draft: str, depth: int = 3
) -> Extraction | None:
    """The candidate of the best-ranked sentence (among the first ``depth``) that has one;
    the draft decides between several candidates of that sentence. Tokens that occur in
    the question are not answers. For a key / code / password / PIN question, the first
    ``IDENTIFIER_DEPTH`` sentences are taken by ``code_shape`` first, then rank: "20" in
    "a couple of 20 year old hackers" is a quantity, and that sentence about PINs ranked
    above the paraphrased needle (3rd vs 4th) at 128k, where XL3M answered "20" in 3 of 4
    haystacks; "April 2004" (a year) made it answer "2004" in another."""
    in_question = set(candidates(question))
    ranked = list(enumerate(ranked_sentences[:depth]))
    identifier = wants_identifier(question)
    if identifier:
        ranked = list(enumerate(ranked_sentences[: max(depth, IDENTIFIER_DEPTH)]))
        ranked.sort(key=lambda item: sentence_code_shape(item[1]))  # stable
    for rank, sentence in ranked:
        options = [c for c in candidates(sentence) if c not in in_question]
        if identifier:
            options.sort(key=code_shape)
        if not options:
            continue
        for option in options:
            if re.search(rf"(?<![\w]){re.escape(option)}(?![\w])", draft):
                return Extraction(option, rank, True)
        return Extraction(options[0], rank, False)
    return None


def code_shape(token: str) -> int:
    """How much ``token`` looks like a code, 0 (most) to 3 (least): 0 a code of 5+
    characters ("69751", "X7K-29Q", "7-3-9"); 1 four characters that are not a year
    ("4821", "A1B2"); 2 a year ("2004"); 3 a quantity ("20", "1,024", "3.25", the range
    "20-25"). The answer type of a question for a key, code, password or PIN."""
    alnum = re.sub(r"[^\w]", "", token)
    parts = token.split("-")
    if re.search(r"[,.]", token) or (len(parts) == 2 and all(p.isdigit() for p in parts)):
        return 3
    if len(alnum) >= 5 or (len(parts) >= 3 and all(parts)):
        return 0
    if len(alnum) == MIN_IDENTIFIER_CHARS:
        return 2 if _YEAR.fullmatch(alnum) else 1
    return 3


def sentence_code_shape(sentence: str) -> int:
    """``code_shape`` of the sentence's most code-like candidate (4 when it holds none)."""
    return min((code_shape(c) for c in candidates(sentence)), default=4)


def final_text(draft: str, extraction: Extraction | None) -> str:
    """The model's draft when it states the extracted value, else the value itself."""
    if extraction is None:
        return draft
    if extraction.agreed_with_model:
        return draft
    return extraction.value
