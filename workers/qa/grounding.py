"""Grounding: an answer is shown as a fact only when the documents support it.

A 135M model answers every question, the unanswerable ones included, and cites whatever it
read. So before an answer is returned it is checked against the spans it cites and the
documents' text near them, claim by claim (a claim is a sentence of the answer; a summary is
checked sentence by sentence), deterministically and cheaply (string search plus one batch
of the MiniLM embedder, no model call):

1. **Substance**: the claim's key tokens, what it adds to the question (numbers, dates,
   names: capitalised words, quoted strings), must all occur (normalised: case, accents,
   digit grouping, number words) in one evidence window, a cited sentence with its
   neighbours, or a sentence of the documents holding the claim's rarest tokens. A claim
   without key tokens needs its content words there (``word_coverage``) or a window the
   embedder finds close to it (``claim_similarity``).
2. **Relevance**: that window must be about the question: it holds enough of the question's
   content words (``question_words``), or the embedder finds it close to the question
   (``question_similarity``), or it holds, in the answer's own tokens, the kind of answer the
   question asks for (a date for "when", a number for "how many", a code for "pass key",
   ``answer_types``) and is not far from it (``typed_similarity``).
   The sentence holding the claim's *value* (the key tokens of the asked kind: a name for
   who / which company / where, a number for how many / how much, a date for when) must be
   about the question's subject: name all its *anchors* (a name or number found in few
   places) or, for a value question without anchors, hold one of its rare subject words
   ("quay", "rebuilding"); a neighbour counts only for a sentence that refers back to it
   ("It carried…"), never for a title line (``grounding_subject``). A value of the asked
   kind copied from a sentence about another subject, or from the report's title next to
   the sentence about the subject, is no answer; a window whose value sentence names the
   subject is relevant however the question is worded. A name of the question the
   documents never write leaves only the shared-words test.
3. **Kind**: a question that asks for a number, a date or a code is not answered by a text
   that holds none, nor by supported sentences none of which states one.

Outcome: every claim supported: grounded. Some: the unsupported sentences are removed and
the answer is marked not verified (``grounded=False``). None, or the model said it could
not find it: the reply says the documents do not appear to answer the question and the
citations are the closest passages, not support (``abstained=True``). The verdict, the
reasons and the evidence of each claim go into the trace (step ``grounding``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from workers.documents.embeddings import get_embedder
from workers.writing.length import requested_words

from . import answer_types
from .citations import dedupe, make_citation, sentence_units
from .grounding_subject import (
    STRONG_KINDS,
    Subject,
    locating_words,
    names_subject,
    question_subject,
    value_tokens,
)
from .grounding_words import (
    MAX_SEARCH_CHARS,
    STOP_WORDS,
    TOKEN,
    content_words,
    fold,
    split_words,
    stem,
    stem_bag,
    word_pattern,
    word_tokens,
)
from .questions import wants_whole_document
from .types import Citation, SourceDocument

log = logging.getLogger(__name__)

ABSTAIN_TEXT = "The documents don't appear to answer this question."


@dataclass(frozen=True)
class Strictness:
    name: str
    question_words: float  # share of the question's content words in the window
    question_similarity: float  # cosine(question, window) without shared words
    typed_similarity: float  # cosine(question, window) when it holds the asked kind
    word_coverage: float  # share of a claim's content words in the window (no key tokens)
    claim_similarity: float  # cosine(claim, window) instead of word_coverage
    anchor_vouches: bool  # a window naming the question's rare subject and holding the
    # claim's key tokens needs no word_coverage (the model words the rest its own way)


LEVELS: dict[str, Strictness | None] = {
    "strict": Strictness("strict", 0.67, 0.45, 0.2, 0.7, 0.7, False),
    "normal": Strictness("normal", 0.5, 0.35, 0.05, 0.5, 0.6, True),
    "off": None,
}
DEFAULT_LEVEL = "normal"
# STRONG_KINDS (grounding_subject): a number, a date, a code is in few sentences (a
# capitalised name is in most): holding one lowers the relevance bar to typed_similarity.
# A weak kind (person, organisation, place, title) lowers it by WEAK_KIND_FACTOR only.
WEAK_KIND_FACTOR = 0.6
MAX_CLAIMS = 40  # sentences of an answer checked (a longer answer keeps the rest unchecked)
HITS_PER_TOKEN = 4  # document sentences fetched per searched token
SEARCHED_TOKENS = 3  # the claim's rarest tokens searched in the documents
NEIGHBOURS = 1  # sentences on each side of an evidence sentence ("the text near it")
MIN_COVERED_WORDS = 2  # a longer claim adding fewer words to the question needs
SHORT_ANSWER = 6  # claim_similarity; a short answer ("Grain.", "In the town.") does not
MAX_CLOSEST_CANDIDATES = 24  # passages ranked for them
CLOSEST = 3  # closest passages shown when the documents do not appear to answer
SHORT_TEXT_CHARS = 20_000  # a text this short is searched sentence by sentence if need be


def check_level(level: str | None) -> str:
    """The strictness setting, validated (None → the default)."""
    level = (level or DEFAULT_LEVEL).strip().lower()
    if level not in LEVELS:
        raise ValueError(f"grounding must be one of {', '.join(LEVELS)}, not {level!r}")
    return level


# -- claims ------------------------------------------------------------------------------------

_QUOTED = re.compile(r"[\"“«]([^\"“”«»\n]{2,80})[\"”»]")
# "I cannot find…", "the text does not mention…", "not stated": the model's own refusal.
_REFUSAL = re.compile(
    r"\b(?:can ?not|can't|could ?not|couldn't|unable to)\s(?:find|locate|determine|answer|tell"
    r"|identify)\b|\b(?:do not|don't|does not|doesn't|did not|didn't)\s(?:know|contain|mention"
    r"|say|state|specify|provide|include)\b|\bno (?:information|mention|answer|data|details?)\b"
    r"|\bnot (?:mentioned|stated|specified|provided|given|found|available|known)\b",
    re.IGNORECASE,
)
_NEGATIONS = frozenset(split_words("not never nor instead rather"))  # "instead of", "rather than"
NEGATED_WORDS = 2  # tokens after a negation that it denies ("not in 1600", "not the Board")
REFUSAL_MAX_SENTENCES = 2  # a longer answer is checked sentence by sentence instead


@dataclass
class Claim:
    text: str
    key: list[str]  # folded key tokens (numbers, names, quoted strings' words)
    words: list[str]  # folded content words that are not key tokens
    notes: dict[str, Any] = field(default_factory=dict)


def _claim(sentence: str, question_bag: set[str], lowercase_in_docs: set[str]) -> Claim:
    key: list[str] = []
    words: list[str] = []
    quoted = {fold(w) for q in _QUOTED.findall(sentence) for w in q.split()}
    denied = -NEGATED_WORDS - 1  # index of the last negation word
    for i, (raw, folded) in enumerate(word_tokens(sentence)):
        if folded in _NEGATIONS:
            denied = i
        if folded in STOP_WORDS or stem(folded) in question_bag or i - denied <= NEGATED_WORDS:
            continue  # a denied token ("in 2007, not 1600") is not claimed to be there
        is_key = (
            folded[:1].isdigit()
            or folded in quoted
            or (raw[:1].isupper() and (i > 0 or folded not in lowercase_in_docs))
        )
        if is_key:
            key.append(folded)
        elif len(folded) > 2:
            words.append(folded)
    return Claim(sentence, list(dict.fromkeys(key)), list(dict.fromkeys(words)))


# -- evidence windows ------------------------------------------------------------------------


@dataclass
class Window:
    document: SourceDocument
    start: int  # the evidence sentence(s)
    end: int
    around: tuple[int, int]  # with NEIGHBOURS sentences on each side
    cited: bool

    @property
    def text(self) -> str:
        return self.document.text[self.around[0] : self.around[1]]

    @property
    def core(self) -> str:
        return self.document.text[self.start : self.end]


def _window(doc: SourceDocument, start: int, end: int, cited: bool) -> Window:
    lo, hi = max(0, start - 600), min(len(doc.text), end + 600)
    units = sentence_units(doc.text, lo, hi)
    inside = [i for i, (s, e) in enumerate(units) if s < end and e > start]
    if not inside:
        return Window(doc, start, end, (start, end), cited)
    first, last = max(0, inside[0] - NEIGHBOURS), min(len(units) - 1, inside[-1] + NEIGHBOURS)
    return Window(doc, start, end, (min(start, units[first][0]), max(end, units[last][1])), cited)


def _search(doc: SourceDocument, token: str, limit: int, prefix: bool = False) -> list[Window]:
    """Sentences of ``doc`` holding ``token`` (case-insensitive, a whole word or, with
    ``prefix``, a word starting with it)."""
    if len(doc.text) > MAX_SEARCH_CHARS:
        return []
    pattern = word_pattern(fold(token) if token[:1].isdigit() else token, prefix)
    out = []
    for m in pattern.finditer(doc.text):
        out.append(_window(doc, m.start(), m.end(), cited=False))
        if len(out) >= limit:
            break
    for w in out:  # the evidence is the whole sentence, not the word
        units = sentence_units(doc.text, w.around[0], w.around[1])
        hit = next(((s, e) for s, e in units if s <= w.start < e), (w.start, w.end))
        w.start, w.end = hit
    return out


def _spellings(claim: Claim, sentence: str) -> list[str]:
    """How the claim's rarest tokens are written (the search needs the text's spelling)."""
    written = {f: raw for raw, f in word_tokens(sentence)}
    ranked = sorted(claim.key, key=lambda t: -len(t)) + sorted(claim.words, key=lambda t: -len(t))
    return [written.get(t, t) for t in ranked[:SEARCHED_TOKENS]]


# -- the check -------------------------------------------------------------------------------


@dataclass
class Verdict:
    text: str
    citations: list[Citation]
    grounded: bool
    abstained: bool
    notes: dict[str, Any]


def _embed(texts: list[str], notes: dict[str, Any]):  # noqa: ANN202 - numpy array or None
    """The texts' vectors, or None when the embedder fails: then the lexical tests decide
    alone, and the failure is logged and recorded in the trace (``notes["embedder"]``)."""
    try:
        return get_embedder().embed(texts)
    except Exception as exc:
        log.warning("grounding: embedder unavailable, lexical tests only", exc_info=True)
        notes["embedder"] = f"unavailable ({type(exc).__name__}: {exc})"[:300]
        return None


def check(
    question: str,
    text: str,
    citations: Sequence[Citation],
    documents: Sequence[SourceDocument],
    level: str | None = None,
) -> Verdict:
    """The answer as it may be shown, with its verdict (see the module's docstring)."""
    name = check_level(level)
    rules = LEVELS[name]
    notes: dict[str, Any] = {"strictness": name, "draft": text}
    if rules is None:
        notes.update(verdict="unchecked", reasons=["grounding is off"])
        return Verdict(text, list(citations), False, False, notes)
    by_id = {d.id: d for d in documents}
    cited = [
        _window(by_id[c.document_id], c.start, c.end, cited=True)
        for c in citations
        if c.document_id in by_id
    ]
    kinds = answer_types.question_kinds(question)
    notes["asked_kind"] = sorted(kinds)
    sentences = [text[s:e] for s, e in sentence_units(text)] or [text]
    refused = len(sentences) <= REFUSAL_MAX_SENTENCES and _REFUSAL.search(text)
    if not text.strip() or refused:
        reason = "no answer text" if not text.strip() else "the model said it found no answer"
        return _abstain(question, documents, cited, notes, [reason])
    strong = kinds & STRONG_KINDS
    if strong and not strong & _kinds_of(text):
        reason = f"the question asks for a {'/'.join(sorted(strong))}; the answer holds none"
        return _abstain(question, documents, cited, notes, [reason])

    question_bag = {stem(w) for w in content_words(question)}
    subject = question_subject(question, documents)
    subject.located = locating_words(subject, kinds, documents)
    notes["anchors"] = sorted(subject.anchors)
    if subject.unnamed:
        notes["unnamed"] = subject.unnamed
    # A summary, or an answer written to a length: its sentences are about the documents.
    summary = wants_whole_document(question) or requested_words(question) is not None
    lowercase = _lowercase_words(sentences, documents)
    claims = [_claim(s, question_bag, lowercase) for s in sentences[:MAX_CLAIMS]]

    windows: list[list[Window]] = []
    for claim in claims:
        found = list(cited)
        for token in _spellings(claim, claim.text):
            for doc in documents:
                found += _search(doc, token, HITS_PER_TOKEN)
        windows.append(found)
    searched = [_fewest_missing(claim, found) for claim, found in zip(claims, windows, strict=True)]
    # Only windows that hold a claim's key tokens can support it: only those are embedded
    # (the embedder is the cost of the check).
    read = [w for found in windows for w in found]  # for the closest passages
    windows = [
        [w for w in found if not claim.key or _has_all(claim.key, stem_bag(w.text))]
        for claim, found in zip(claims, windows, strict=True)
    ]
    flat = list({_key(w): w for ws in windows for w in ws}.values())
    vectors = _embed([question, *(c.text for c in claims), *(_excerpt(w) for w in flat)], notes)
    index = {_key(w): i for i, w in enumerate(flat)}

    def sim(a: int, window: Window) -> float | None:
        if vectors is None:
            return None
        return float(vectors[a] @ vectors[1 + len(claims) + index[_key(window)]])

    kept: list[int] = []
    support: list[Citation] = []
    for n, (claim, found) in enumerate(zip(claims, windows, strict=True)):
        results = [
            (_judge(claim, w, subject, kinds, summary, rules, sim(0, w), sim(1 + n, w)), w)
            for w in found
        ]
        supported = [(r, w) for r, w in results if r["supported"]]
        if not supported:
            claim.notes = {"supported": False, "key_tokens": claim.key,
                           "reason": _why_not(claim, [r for r, _ in results], searched[n])}
            if results:  # the evidence it came closest to, for the trace
                best, w = max(results, key=lambda rw: rw[0]["score"])
                claim.notes["closest"] = {**best, "document_id": w.document.id,
                                          "start": w.start, "end": w.end}
            continue
        result, w = max(supported, key=lambda rw: rw[0]["score"])
        claim.notes = {**result, "key_tokens": claim.key, "document_id": w.document.id,
                       "start": w.start, "end": w.end}
        kept.append(n)
        support.append(make_citation(w.document, w.start, w.end))
    notes["claims"] = [{"text": c.text[:300], **c.notes} for c in claims]
    if not kept:
        return _abstain(question, documents, cited, notes,
                        ["no claim of the answer is supported"], read)
    in_question = _kinds_of(question)  # "in 1990" of the question is no answer
    if strong and not any(
        value_tokens(claims[i].key, strong) or strong & _kinds_of(claims[i].text) - in_question
        for i in kept
    ):
        # Sentences that are true and on topic ("The quay was rebuilt in spring.") but state
        # no value of the asked kind do not answer "How much did it cost?".
        reason = f"no supported sentence states a {'/'.join(sorted(strong))}"
        return _abstain(question, documents, cited, notes, [reason], read)
    shown = " ".join(claims[i].text for i in kept) if len(kept) < len(claims) else text
    dropped = [claims[i].text for i in range(len(claims)) if i not in kept]
    notes["verdict"] = "supported" if not dropped else "partial"
    notes["removed"] = dropped
    notes["reasons"] = (
        ["every claim is supported by a cited span"]
        if not dropped
        else [f"{len(dropped)} of {len(claims)} sentences have no support and were removed"]
    )
    return Verdict(shown, dedupe(support), not dropped, False, notes)


def _kinds_of(claim: str) -> frozenset[str]:
    """Answer kinds a claim holds; its first word counts too ("Maria Keller approved it")."""
    return answer_types.sentence_kinds("and " + claim)


def _key(w: Window) -> tuple[object, int, int]:
    return (w.document.id, w.start, w.end)


def _lowercase_words(sentences: Sequence[str], documents: Sequence[SourceDocument]) -> set[str]:
    """The answer's sentence-initial words the documents also write in lower case (ordinary
    words, not names: "Approved by …" must not need "Approved" in the text)."""
    firsts = {m.group(0) for s in sentences if (m := TOKEN.search(s)) and m.group(0)[:1].isupper()}
    out = set()
    for word in firsts:
        lower = word.lower()
        if any(
            re.search(rf"(?<!\w){re.escape(lower)}(?!\w)", d.text[:MAX_SEARCH_CHARS])
            for d in documents
        ):
            out.add(fold(word))
    return out


def _judge(
    claim: Claim,
    w: Window,
    subject: Subject,
    kinds: frozenset[str],
    summary: bool,
    rules: Strictness,
    q_sim: float | None,
    c_sim: float | None,
) -> dict[str, Any]:
    bag = stem_bag(w.text)
    missing = [t for t in claim.key if stem(t) not in bag]
    # The sentence holding the claim's value names the question's rare subject terms: it
    # says something about that subject with the answer's substance (a paraphrased fact
    # shares little else with its question); a neighbour's subject does not count.
    value = value_tokens(claim.key, kinds) or claim.key
    about = names_subject(w.document.text, w.around, value, subject, asked=bool(kinds))
    anchored = bool(claim.key) and bool(subject.anchors) and about
    covered = sum(stem(t) in bag for t in claim.words)
    coverage = covered / len(claim.words) if claim.words else None
    if claim.key:  # the key tokens, and what the claim says of them ("five grandchildren")
        substance = not missing and (
            not claim.words
            or (anchored and rules.anchor_vouches)
            or (coverage or 0) >= rules.word_coverage
            or (c_sim or 0) >= rules.claim_similarity
        )
    elif len(claim.words) >= MIN_COVERED_WORDS or len(word_tokens(claim.text)) <= SHORT_ANSWER:
        substance = (coverage or 0) >= rules.word_coverage or (c_sim or 0) >= rules.claim_similarity
    elif claim.words:  # a long sentence adding one word to the question ("the dog mentioned
        # in the passage is a reference to the dog"): finding it proves little
        substance = (c_sim or 0) >= rules.claim_similarity
    else:
        substance = True  # "Yes." / "No.": relevance alone decides
    total = sum(subject.weights.values())
    shared = (sum(v for w, v in subject.weights.items() if w in bag) / total if total
              else None)
    typed_kinds = kinds & _kinds_of(claim.text) & answer_types.sentence_kinds(w.text)
    typed_bar = (rules.typed_similarity if typed_kinds & STRONG_KINDS
                 else rules.question_similarity * WEAK_KIND_FACTOR)
    if summary:
        relevant = True  # a summary's sentences are about the documents, not the question
    elif subject.unnamed:  # the documents never name its subject: only shared words count
        relevant = shared is not None and shared >= rules.question_words
    elif not about:
        relevant = False  # about something else: the value's sentence is not about the subject
    else:
        relevant = (
            (shared is not None and shared >= rules.question_words)
            or (q_sim is not None and q_sim >= rules.question_similarity)
            or (bool(typed_kinds) and bool(claim.key) and (q_sim is None or q_sim >= typed_bar))
            or (anchored and (q_sim is None or q_sim >= rules.typed_similarity))
            or (not subject.weights and q_sim is None)
        )
    return {
        "supported": bool(substance and relevant),
        "substance": bool(substance),
        "score": (shared or 0) + (q_sim or 0) + (c_sim or 0) + (1 if w.cited else 0),
        "missing": missing,
        "word_coverage": None if coverage is None else round(coverage, 2),
        "question_words": None if shared is None else round(shared, 2),
        "question_similarity": None if q_sim is None else round(q_sim, 3),
        "claim_similarity": None if c_sim is None else round(c_sim, 3),
        "asked_kind_held": sorted(typed_kinds),
        "anchored": anchored,
        "value_sentence_on_subject": about,
        "cited": w.cited,
    }


def _has_all(tokens: Sequence[str], bag: set[str]) -> bool:
    return all(stem(t) in bag for t in tokens)


def _fewest_missing(claim: Claim, found: Sequence[Window]) -> list[str] | None:
    """The key tokens missing from the window that has most of them (None: no window)."""
    if not found:
        return None
    bags = [stem_bag(w.text) for w in found]
    return min(([t for t in claim.key if stem(t) not in bag] for bag in bags), key=len)


def _excerpt(w: Window, chars: int = 600) -> str:
    """The window as the embedder reads it: at most ``chars`` around its evidence."""
    lo, hi = w.around
    if hi - lo <= chars:
        return w.text
    middle = (w.start + w.end) // 2
    lo = max(lo, min(middle - chars // 2, hi - chars))
    return w.document.text[lo : lo + chars]


def _why_not(claim: Claim, results: list[dict[str, Any]], missing: list[str] | None) -> str:
    if missing is None:
        return "no cited span and no sentence of the documents holds its words"
    if missing:
        return f"not in any cited span or nearby sentence: {', '.join(missing[:5])}"
    if not results:
        return "no cited span and no sentence of the documents holds its words"
    if not any(r["substance"] for r in results):
        return "its words are not in any cited span or nearby sentence"
    if not any(r["value_sentence_on_subject"] for r in results):
        return "the sentence holding its value is not about the question's subject"
    return "the spans that hold it are not about the question"


def _abstain(
    question: str,
    documents: Sequence[SourceDocument],
    cited: list[Window],
    notes: dict[str, Any],
    reasons: list[str],
    found: Sequence[Window] = (),
) -> Verdict:
    """The documents do not appear to answer: the closest passages, marked as such. They
    are the cited spans and the sentences the check looked at, else sentences holding the
    question's words, else (a short text) every sentence; ranked by the embedder."""
    pool = {_key(w): w for w in [*cited, *found]}
    if len(pool) < CLOSEST:
        for word in [w for _, w in word_tokens(question) if w not in STOP_WORDS][:SEARCHED_TOKENS]:
            for doc in documents:
                pool.update((_key(w), w) for w in _search(doc, stem(word), HITS_PER_TOKEN, True))
    if not pool and sum(len(d.text) for d in documents) <= SHORT_TEXT_CHARS:
        pool = {(d.id, s, e): _window(d, s, e, False) for d in documents
                for s, e in sentence_units(d.text)}
    windows = list(pool.values())
    windows = windows[:MAX_CLOSEST_CANDIDATES]
    vectors = _embed([question, *(_excerpt(w) for w in windows)], notes) if windows else None
    if vectors is not None:
        order = sorted(range(len(windows)), key=lambda i: -float(vectors[0] @ vectors[1 + i]))
        windows = [windows[i] for i in order]
    closest: list[Citation] = []
    for w in windows:  # best first; a span overlapping one already shown adds nothing
        if not any(c.document_id == w.document.id and c.start < w.end and w.start < c.end
                   for c in closest) and w.end > w.start:
            closest.append(make_citation(w.document, w.start, w.end))
        if len(closest) == CLOSEST:
            break
    notes.update(verdict="unsupported", reasons=reasons, closest=len(closest))
    return Verdict(ABSTAIN_TEXT, closest, False, True, notes)
