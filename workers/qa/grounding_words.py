"""Words as the grounding check compares them: folded (case, accents, digit grouping, number
words), crudely stemmed the same way on both sides, and found in a text however it writes
them ("1,024" for 1024, "ten" for 10, "José" for Jose, "Mondays" for Monday).

Shared by the check (``grounding``) and its subject rules (``grounding_subject``).
"""

from __future__ import annotations

import re
import unicodedata

MAX_SEARCH_CHARS = 20_000_000  # documents longer than this are searched near citations only


def split_words(text: str) -> list[str]:
    return text.split()


STOP_WORDS = frozenset(split_words(
    """a an the and or but if of to in on at by for with from as into onto about over under
    after before between during through than then so that this these those there here it its
    is are was were be been being am do does did done has have had having not no nor yes
    i me my we our you your he him his she her they them their what which who whom whose
    when where why how whether can could may might must shall should will would also just
    only very more most some any all each every both either neither other such same own
    one ones up down out off again further once because while until since per via
    said says say according answer answers question document documents text texts
    called named name names mr mrs ms dr
    mention mentions mentioned passage passages context information provided provides
    states stated refers referred"""
))
# Question words that name the kind of answer, not its subject ("how many", "what year").
CUE_WORDS = frozenset(split_words(
    """many much long far old big often large tall year years date day days time month
    kind type number amount percentage percent happen happened"""
))
_NUMBER_WORDS = {
    w: str(i)
    for i, w in enumerate(split_words(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen "
        "fourteen fifteen sixteen seventeen eighteen nineteen twenty"
    ))
}
_TENS = split_words("thirty forty fifty sixty seventy eighty ninety")
_NUMBER_WORDS.update({w: str(10 * (i + 3)) for i, w in enumerate(_TENS)})
SPELLED = {digits: word for word, digits in _NUMBER_WORDS.items()}
TOKEN = re.compile(r"\d[\d,.]*\d|\d|[^\W\d_]+(?:['’][^\W\d_]+)?", re.UNICODE)


def fold(word: str) -> str:
    """Lower case, accents off, digit grouping off, number words as digits."""
    word = unicodedata.normalize("NFKD", word.lower())
    word = "".join(ch for ch in word if not unicodedata.combining(ch)).replace("’", "'")
    if word[:1].isdigit():
        return word.replace(",", "").rstrip(".")
    word = word.removesuffix("'s")
    return _NUMBER_WORDS.get(word, word)


_SUFFIX = re.compile(r"(?:ing|ed|es|s|ly|e)$")


def stem(word: str) -> str:
    """Crude, but the same on both sides: "closed"/"close", "approved"/"approval",
    "inspection"/"inspector"."""
    if word[:1].isdigit() or len(word) <= 3:
        return word
    return _SUFFIX.sub("", word)[:6]


def word_tokens(text: str) -> list[tuple[str, str]]:
    """(as written, folded) for every word and number of ``text``."""
    return [(m.group(0), fold(m.group(0))) for m in TOKEN.finditer(text)]


def stem_bag(text: str) -> set[str]:
    """Folded and stemmed words of ``text``."""
    return {stem(f) for _, f in word_tokens(text)}


def content_words(text: str) -> list[str]:
    return [f for _, f in word_tokens(text) if f not in STOP_WORDS and (len(f) > 2 or f.isdigit())]



def word_pattern(word: str, prefix: bool = False) -> re.Pattern[str]:
    """Where ``word`` is written: a number with or without digit grouping ("1,024" for
    1024, not 10245); a word in any case, with or without accents, and (``prefix``) as the
    start of a longer word or else in its plural or possessive ("Monday": "on Mondays")."""
    if word[:1].isdigit():
        digits = r"(?<![\d,.])" + "[,.]?".join(re.escape(c) for c in word) + r"(?!\d)"
        spelled = SPELLED.get(word)  # 10 is also "ten"
        return re.compile(rf"{digits}|(?<!\w){spelled}(?!\w)" if spelled else digits,
                          re.IGNORECASE)
    end = "" if prefix else r"(?:e?s|'s|’s)?(?!\w)"
    return re.compile(rf"(?<!\w){_accents(word.lower())}{end}", re.IGNORECASE)


def _accents(word: str) -> str:
    """A pattern for ``word`` (folded) that also matches it written with accents."""
    return "".join(_ACCENTED.get(ch, re.escape(ch)) for ch in word)


_ACCENTED = {  # a folded letter → the letters that fold to it (the common Latin ones)
    "a": "[aàáâãäåā]", "c": "[cçćč]", "e": "[eèéêëēė]", "i": "[iìíîïī]", "n": "[nñń]",
    "o": "[oòóôõöøō]", "s": "[sśš]", "u": "[uùúûüū]", "y": "[yýÿ]", "z": "[zźżž]",
}
