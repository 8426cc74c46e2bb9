"""Answer typing for every kind of question: what kind of answer the question asks for
(person, organisation, place, date/time, number/quantity, code, title/name), and which kinds
a sentence holds. Retrieval uses it as one more arm: the sentences closest to the question
that hold an answer of the asked type (a paraphrased fact shares no word with its question,
but "who" wants a name and "how many" a number).

Everything here is linear in the text: the question is matched against fixed phrase lists
(no regular expression that can backtrack), and a sentence is read word by word once.
"""

from __future__ import annotations

import re

from .extract import candidates, code_shape, sentence_code_shape

PERSON, ORGANISATION, PLACE, DATE, WEEKDAY, NUMBER, CODE, TITLE = (
    "person", "organisation", "place", "date", "weekday", "number", "code", "title",
)
KINDS = (PERSON, ORGANISATION, PLACE, DATE, WEEKDAY, NUMBER, CODE, TITLE)
# A weekday is a date too; a question for a weekday wants the narrower kind (measured at
# 128k: "which day of the week" ranked any sentence with a year or a month first).
NARROWER = {WEEKDAY: DATE}

# Question cues, as lower-case word sequences matched at word boundaries.
_QUESTION_CUES: dict[str, tuple[str, ...]] = {
    CODE: ("pass key", "passkey", "pass keys", "passcode", "password", "pin", "code", "codes",
           "combination", "serial", "key to", "access key", "pass code"),
    PERSON: ("who", "whom", "whose", "which person", "what person", "name of the person",
             "which man", "which woman", "what was his name", "what was her name"),
    ORGANISATION: ("which company", "what company", "which organisation", "which organization",
                   "what organisation", "what organization", "which firm", "what firm",
                   "which agency", "what agency", "which institution", "which university",
                   "what university", "which bank", "which team", "what team", "which party",
                   "which band", "what band", "which publisher", "which newspaper",
                   "which department", "which ministry", "which committee"),
    PLACE: ("where", "which city", "what city", "which country", "what country", "which town",
            "what town", "which place", "what place", "which state", "which region",
            "which village", "which island", "which street", "what street", "which port",
            "what port", "which continent", "what address", "which location",
            "what location", "which harbour", "which harbor"),
    DATE: ("when", "what year", "which year", "what date", "which date", "what day",
           "which day", "what time", "which month", "what month", "what season",
           "how long ago", "since when", "what century", "which decade", "what hour",
           "at what time"),
    WEEKDAY: ("what weekday", "which weekday", "day of the week", "which day are",
              "which day is", "which day does", "which day do", "what day are",
              "what day is", "what day does", "what day do", "on which day", "on what day"),
    NUMBER: ("how many", "how much", "how long", "how far", "how tall", "how old", "how big",
             "how heavy", "how large", "how deep", "how wide", "how high", "how often",
             "what percentage", "what percent", "what number", "what amount", "what size",
             "what price", "what cost", "what distance", "what weight", "what speed",
             "how fast", "what share", "what fraction", "what temperature"),
    TITLE: ("called", "what is the name", "what was the name", "what's the name", "named",
            "title of", "what title", "which book", "what book", "which film", "what film",
            "which movie", "what movie", "which song", "what song", "which ship",
            "what ship", "which boat", "what boat", "which vessel", "what vessel",
            "which album", "which novel", "which play", "which project", "what project",
            "what brand", "which brand", "what product", "which product", "nickname"),
}
_MAX_CUE_WORDS = max(len(c.split()) for cues in _QUESTION_CUES.values() for c in cues)
_CUE_INDEX = {cue: kind for kind, cues in _QUESTION_CUES.items() for cue in cues}
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")  # a word, an inner apostrophe allowed



def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_MONTHS = _words(
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec"
)
_MONTHS_STRICT = _MONTHS - {"may", "march", "mar", "jan", "dec", "sep", "oct", "nov", "aug",
                            "apr", "jun", "jul", "feb", "sept"}
_WEEKDAYS = _words(
    "monday tuesday wednesday thursday friday saturday sunday weekend"
)
# Only words that name a time: "at dawn", "every morning" are everywhere in prose.
_TIME_WORDS = _words("noon midnight o'clock")
_NUMBER_WORDS = _words(
    "two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty "
    "ninety hundred hundreds thousand thousands million millions billion billions dozen "
    "dozens half third quarter percent twice triple double"
)
_HONORIFICS = _words(
    "mr mrs ms miss dr prof professor sir dame lady lord captain capt general colonel "
    "major sergeant judge justice senator president minister mayor king queen prince "
    "princess saint st father mother uncle aunt inspector officer agent chief director "
    "ceo chairman chairwoman governor"
)
_ORG_WORDS = _words(
    "inc inc. ltd ltd. llc corp corp. corporation company co co. group university "
    "college institute agency bank association committee council department ministry "
    "foundation society board authority commission bureau office league union party "
    "press times journal team club federation trust fund partners laboratories labs "
    "school hospital museum church airlines railway"
)
_PLACE_WORDS = _words(
    "city town village county state province country island islands river lake mount "
    "mountain mountains street road avenue square bay harbour harbor port valley coast "
    "district region kingdom republic park bridge station airport"
)
_PLACE_PREPOSITIONS = _words("in at from to near outside inside across into")


def question_kinds(question: str) -> frozenset[str]:
    """The kinds of answer the question asks for (empty when its words say nothing)."""
    words = [w.lower() for w in _WORD.findall(question)]
    kinds: set[str] = set()
    for i in range(len(words)):
        phrase = ""
        for j in range(i, min(len(words), i + _MAX_CUE_WORDS)):
            phrase = f"{phrase} {words[j]}" if phrase else words[j]
            kind = _CUE_INDEX.get(phrase)
            if kind:
                kinds.add(kind)
    if CODE in kinds:
        kinds.discard(NUMBER)  # "what number opens it": the code shape decides
    if WEEKDAY in kinds:
        kinds.add(DATE)
    return frozenset(kinds)


def _is_capitalised(word: str) -> bool:
    return word[:1].isupper()


def _is_year(word: str) -> bool:
    return len(word) == 4 and word.isdigit() and word[:2] in {"15", "16", "17", "18", "19", "20"}


def sentence_kinds(sentence: str) -> frozenset[str]:
    """The kinds of answer ``sentence`` holds, read word by word (one pass)."""
    kinds: set[str] = set()
    if any(code_shape(c) <= 1 for c in candidates(sentence)):
        kinds.add(CODE)
    if any(q in sentence for q in ('"', "“", "«")):
        kinds.add(TITLE)  # a quoted name or title
    if _clock_time(sentence):
        kinds.add(DATE)
    previous = ""
    run = 0  # capitalised words in a row, the sentence's first word not counted
    for i, word in enumerate(_WORD.findall(sentence)):
        lower = word.lower().removesuffix("'s")
        if lower.endswith("s") and lower[:-1] in _WEEKDAYS:
            lower = lower[:-1]  # "on Tuesdays"
        if any(ch.isdigit() for ch in word) or lower in _NUMBER_WORDS:
            kinds.add(NUMBER)
        if lower in _WEEKDAYS:
            kinds.update((DATE, WEEKDAY))
        if _is_year(word) or lower in _TIME_WORDS:
            kinds.add(DATE)
        if lower in _MONTHS and (lower in _MONTHS_STRICT or (i > 0 and _is_capitalised(word))):
            kinds.add(DATE)  # "May", "March" only capitalised inside the sentence
        if i == 0 or not _is_capitalised(word) or lower in _MONTHS or lower in _WEEKDAYS:
            run = 0
            previous = word
            continue
        run += 1
        after = previous.lower()
        if after in _HONORIFICS:
            kinds.add(PERSON)
        if run == 2 and after not in _ORG_WORDS and after not in _PLACE_WORDS:
            kinds.add(PERSON)  # First Last
        if run >= 2 and lower in _ORG_WORDS:
            kinds.add(ORGANISATION)
        if run >= 2 and lower in _PLACE_WORDS:
            kinds.add(PLACE)
        if run == 1 and after in _PLACE_PREPOSITIONS:
            kinds.add(PLACE)
        if run == 1 and after in {"the", "of", "for", "by", "with"}:
            kinds.add(ORGANISATION)  # "the Foundation", "by Acme"
        kinds.add(TITLE)  # any name inside the sentence can be what a thing is called
        previous = word
    return frozenset(kinds)


def _clock_time(sentence: str) -> bool:
    """A clock time such as 9:30 or 14:05 (scanned once, no regular expression)."""
    for i, ch in enumerate(sentence):
        if (ch == ":" and 0 < i < len(sentence) - 2 and sentence[i - 1].isdigit()
                and sentence[i + 1 : i + 3].isdigit()):
            return True
    return False


def matches(question_kinds_: frozenset[str], sentence: str) -> bool:
    """Does the sentence hold an answer of one of the asked kinds?"""
    return bool(question_kinds_ & sentence_kinds(sentence)) if question_kinds_ else False


def typed_order(question: str, ranked_sentences: list[str]) -> list[int] | None:
    """Indices of ``ranked_sentences`` (best first) that hold an answer of the question's
    kind, in the same order; for a code question, by ``code_shape`` first. None when the
    question's words say nothing about the kind of answer."""
    kinds = narrowest(question_kinds(question))
    if not kinds:
        return None
    held = [i for i, s in enumerate(ranked_sentences) if kinds & sentence_kinds(s)]
    if CODE in kinds:
        held.sort(key=lambda i: sentence_code_shape(ranked_sentences[i]))  # stable
    return held


def narrowest(kinds: frozenset[str]) -> frozenset[str]:
    """``kinds`` without those a narrower asked kind implies (a weekday question: not any
    date)."""
    return kinds - {NARROWER[k] for k in kinds if k in NARROWER}


def typed_key(kinds: frozenset[str], sentence: str, closeness: float | None) -> tuple | None:
    """Sort key (lower is better) of a sentence that holds an answer of one of ``kinds``:
    for a code question the code shape first, then ``closeness`` to the question (higher
    is closer; unknown counts as far); None when it holds none."""
    kinds = narrowest(kinds)
    if not kinds or not kinds & sentence_kinds(sentence):
        return None
    shape = sentence_code_shape(sentence) if CODE in kinds else 0
    return (shape, -closeness if closeness is not None else float("inf"))
