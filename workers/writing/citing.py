"""Writing from a library: topics for the plan, passages per section, and numbered citations
that only a supported sentence gets.

A section is written from passages retrieved for its point (exact spans of the reference
documents), shown to the model numbered and with the request to restate them, marking a
sentence taken from passage n with [n]. Afterwards each of its sentences is checked against
every sentence of those passages and the text around them (``EVIDENCE_CHARS``), each
evidence sentence alone, by the QA grounding check (``workers.qa.grounding.check``, the
check that vets chat answers) at "strict", under the attaching rule (``_attested``): the
sentence's names and numbers in the span, its content words there (0.7 of them), and the
embedder agreeing (cosine ≥ 0.6). A sentence so attested gets a marker ``[k]`` and the
best such span; any other stays as written, without a citation: a small model's prose is
kept, but neither what it invented nor a loose paraphrase on a neighbouring topic is dressed
as sourced. The model's own markers never reach the text: all are removed, and one counts
as confirmed only when the check cited its sentence at a span of the passage it named.

Section texts hold section-local markers; ``number_citations`` numbers them across the
whole text (one number per span, in order of first use) for the page, the exports and
the bench.

Not in ``workers.writing.__init__``: the grounding check imports ``workers.writing.length``,
so this module is imported by its callers (after the package).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from workers.qa.citations import make_citation, sentence_units
from workers.qa.grounding import LEVELS, MAX_CLAIMS, check, check_level
from workers.qa.grounding_words import content_words
from workers.qa.types import Citation, Passage, SourceDocument

# "[3]", "[^3]", "[12, 13]", "[Source 2]" written by the model: it saw the passages numbered;
# "[n]" is the prompt's own wording copied.
MODEL_MARKER = re.compile(
    r"[ \t]?\[\^?(?:source\s*)?(?:\d{1,3}|n)(?:\s*[,;–-]\s*\d{1,3})*\]", re.IGNORECASE)
# Our markers in a stored section text (the model's were removed before ours went in).
MARKER = re.compile(r"\[(\d{1,3})\]")
MARKER_WITH_SPACE = re.compile(r" ?\[\d{1,3}\]")
# A sentence's closing punctuation (and closing quotes/brackets/emphasis): the marker goes
# before it ("… in 1998 [2]."). Found by walking back from the end, not by a regex anchored
# at $ (searched from every start, that is quadratic in a run of "!").
_STOPS, _CLOSERS = ".!?…", "\"”’)]*_"
# The prompt's label of its passages echoed, at a line's end ("Sources (numbered…):").
_PROMPT_LINE = re.compile(
    r"(?im)(?:^|(?<=[.!?]) )[ \t]*(?:sources|reference material)\b[^\n.!?]{0,200}:[ \t]*$\n?")
# Lines that are no claim: headings, table rows, separators.
_NOT_PROSE = re.compile(r"^\s*(?:#|\||-{3,}|\*{3,}|_{3,})")
# The check's question: a summary of the sources to a length, so that each sentence is
# judged on its substance (is it in the documents?) and not on relevance to a question.
QUESTION = "Summarise the reference documents in {words} words."
PASSAGES = 3  # retrieved per section (the prompt's reference material)
EVIDENCE_CHARS = 1500  # the text around each passage searched for a sentence's support
MAX_SPAN_CHARS = 600  # a longer evidence unit (a list run together) is no quotable span
# The attaching rule (``_attested``): the check at "strict" (normal attached loose
# paraphrases: half the content words, or an embedding within 0.6, were enough), with its
# lexical test required on its own and the dense score agreeing at normal's bar.
ATTACH_LEVEL = "strict"
AGREE = LEVELS["normal"].claim_similarity  # type: ignore[union-attr]
MIN_CLAIM_WORDS = 3  # content words and names: fewer ("This is true.") claim nothing
TOPIC_PASSAGES = 8  # retrieved for the instruction, as plan topics (documents without headings)
TOPIC_WORDS = 12  # a key passage as a plan topic: its first sentence, cut to this
MAX_TOPICS = 40


@dataclass
class CitedText:
    text: str  # with markers [1]..[n] (section-local)
    citations: list[dict[str, Any]]  # marker k → citations[k - 1]: document_id, start, end, quote
    sentences: int  # prose sentences checked
    cited: int  # of them supported, so cited
    removed_markers: int  # markers the model wrote that the check did not confirm
    unsupported: list[str] = field(default_factory=list)  # sentences left uncited (trace)
    model_markers: int = 0  # markers the model wrote (all removed; see cite)
    confirmed_markers: int = 0  # of them on a sentence cited at a span of the passage named

    def to_dict(self) -> dict[str, Any]:
        return {"sentences": self.sentences, "cited": self.cited,
                "removed_markers": self.removed_markers,
                "model_markers": self.model_markers,
                "confirmed_markers": self.confirmed_markers,
                "unsupported": [s[:200] for s in self.unsupported[:20]]}


@dataclass
class Library:
    """The reference documents a text is written from: their texts (for the check), a
    retriever of exact-span passages (the project's search), and the topics the plan is
    built from (``source_topics``)."""

    documents: list[SourceDocument]
    retrieve: Callable[[str, int], list[Passage]]
    topics: list[str] = field(default_factory=list)
    level: str = ATTACH_LEVEL  # grounding strictness the attaching rule builds on

    @staticmethod
    def plain(text: str) -> str:
        """The text without our markers (what later sections read as the text so far)."""
        return MARKER_WITH_SPACE.sub("", text)

    def passages(self, point: str) -> list[Passage]:
        return list(self.retrieve(point, PASSAGES))

    def cite(self, text: str, passages: Sequence[Passage], words: int) -> CitedText:
        return cite(text, passages, self.documents, words=words, level=self.level)


def strip_model_markers(text: str) -> tuple[str, int]:
    """The text without citation markers the model wrote, and how many there were."""
    return MODEL_MARKER.subn("", text)


def _model_markers(text: str) -> tuple[str, list[tuple[int, frozenset[int], bool]]]:
    """The text without the model's markers (and lines echoing the prompt's labels), and
    each marker as (its position in that text, the passage numbers it names, whether it
    opened a line: "[2] The harbour…" marks the sentence after it, "…1998 [2]." and
    "…1998. [2]" the sentence before)."""
    text = _PROMPT_LINE.sub(lambda m: "" if m.start() == 0 or text[m.start() - 1] == "\n"
                            else "\n", text)  # a label after a sentence: the line breaks
    out, marks, last, removed = [], [], 0, 0
    for m in MODEL_MARKER.finditer(text):
        out.append(text[last:m.start()])
        opens = m.start() == 0 or text[m.start() - 1] == "\n" or \
            text[:m.start()].endswith(("\n ", "\n\t"))
        numbers = frozenset(int(n) for n in re.findall(r"\d{1,3}", m.group(0)))
        marks.append((m.start() - removed, numbers, opens))
        end = m.end()
        while opens and end < len(text) and text[end] in " \t":  # "[1] The…" → "The…"
            end += 1
        removed += end - m.start()
        last = end
    out.append(text[last:])
    return "".join(out), marks


def _marked_units(units: Sequence[tuple[int, int]],
                  marks: Sequence[tuple[int, frozenset[int], bool]]
                  ) -> list[tuple[int | None, frozenset[int]]]:
    """For each model marker: the start of the sentence it was written on (None: none)
    and the passage numbers it names."""
    out = []
    for position, numbers, opens in marks:
        if opens:
            unit = next((s for s, _ in units if s >= position), None)
        else:
            unit = next((s for s, e in reversed(units) if s < position), None)
        out.append((unit, numbers))
    return out


def _closing_start(sentence: str) -> int:
    """Where the sentence's closing stops (and the quotes after them) begin; its end
    (before trailing space) when it has none."""
    end = len(sentence.rstrip())
    quotes = end
    while quotes and sentence[quotes - 1] in _CLOSERS:
        quotes -= 1
    stops = quotes
    while stops and sentence[stops - 1] in _STOPS:
        stops -= 1
    return stops if stops < quotes else end


def _mark(sentence: str, number: int) -> str:
    cut = _closing_start(sentence)
    return f"{sentence[:cut].rstrip()} [{number}]{sentence[cut:]}"


def cite(text: str, passages: Sequence[Passage], documents: Sequence[SourceDocument], *,
         words: int, level: str = ATTACH_LEVEL) -> CitedText:
    """``text`` with a marker on each sentence that one sentence of the section's evidence
    attests (``attests``: the best such span among all of them), and that span; markers
    the model wrote are kept only where the span found lies in the passage they name.
    ``passages``: what the section was written from (numbered [1].. in its prompt)."""
    words = max(words, 1)
    text, marks = _model_markers(text)
    units = [(s, e) for s, e in sentence_units(text) if not _NOT_PROSE.match(text[s:e])]
    by_id = {d.id: d for d in documents}
    # Every sentence of the section's evidence (its passages with EVIDENCE_CHARS around
    # them) is a document of its own: the check then finds, for each written sentence, the
    # one evidence sentence that supports it best, and reads nothing beside it (the quote
    # shown is all the support there is). Its cost follows the section, not the library.
    spans = [(document, lo + a, lo + b) for document, lo, hi in _regions(passages, by_id)
             for a, b in sentence_units(document.span(lo, hi)) if b - a <= MAX_SPAN_CHARS]
    evidence = [SourceDocument(k, document.title, document.span(s, e))
                for k, (document, s, e) in enumerate(spans)]
    question = QUESTION.format(words=words)
    support: dict[int, Citation] = {}
    unsupported: list[str] = []
    for first in range(0, len(units), MAX_CLAIMS):
        batch = units[first:first + MAX_CLAIMS]
        sentences = [text[s:e] for s, e in batch]
        for (s, _), sentence, claim in zip(batch, sentences,
                                           _judge(question, sentences, [], evidence, level),
                                           strict=True):
            if _attested(sentence, claim, level):
                document, a, b = spans[claim["document_id"]]
                support[s] = make_citation(document, a, b)
            else:
                unsupported.append(sentence)
    confirmed = 0
    for unit, numbers in _marked_units(units, marks):
        c = support.get(unit) if unit is not None else None
        confirmed += c is not None and any(
            1 <= n <= len(passages) and passages[n - 1].document_id == c.document_id
            and passages[n - 1].start < c.end and c.start < passages[n - 1].end
            for n in numbers)
    numbers_of: dict[tuple[Any, int, int], int] = {}
    out, last = [], 0
    for s, e in units:
        if s not in support:
            continue
        c = support[s]
        number = numbers_of.setdefault((c.document_id, c.start, c.end), len(numbers_of) + 1)
        out += [text[last:s], _mark(text[s:e], number)]
        last = e
    out.append(text[last:])
    ordered = sorted(numbers_of.items(), key=lambda kv: kv[1])
    citations = [{"document_id": key[0], "start": key[1], "end": key[2],
                  "quote": by_id[key[0]].span(key[1], key[2])} for key, _ in ordered]
    return CitedText("".join(out), citations, len(units), len(support),
                     len(marks) - confirmed, unsupported, len(marks), confirmed)


def _attested(sentence: str, claim: Mapping[str, Any] | None, level: str) -> bool:
    """The attaching rule on the check's verdict for one sentence against one span: the
    check at ``level`` supports it (its names and numbers all in the span), it says
    something checkable (``MIN_CLAIM_WORDS``), its content words are in the span (the
    level's ``word_coverage`` on its own: a paraphrase close in meaning is not enough), and
    the dense score agrees (``AGREE``: words that are there but say something else are
    not enough either). Without the embedder nothing is cited."""
    if not claim or not claim.get("supported"):
        return False
    if len(content_words(sentence)) < MIN_CLAIM_WORDS:
        return False
    rules = LEVELS[check_level(level)]
    if rules is None:
        return False
    coverage, similarity = claim.get("word_coverage"), claim.get("claim_similarity")
    return ((coverage is None or coverage >= rules.word_coverage)
            and similarity is not None and similarity >= AGREE)


def _judge(question: str, sentences: list[str], cited: list[Citation],
           documents: Sequence[SourceDocument], level: str) -> list[dict[str, Any] | None]:
    """The grounding check's verdict on each sentence (its notes: supported, and the span
    of the evidence that supports it), or None where it gave none."""
    if not sentences or not documents:
        return [None] * len(sentences)
    verdict = check(question, " ".join(sentences), cited, documents, level)
    claims = verdict.notes.get("claims") or []
    if len(claims) != len(sentences):
        # The check split the joined text differently (rare: a sentence ending without
        # a break): judge one sentence at a time.
        if len(sentences) == 1:
            return [claims[0] if claims else None]
        return [_judge(question, [s], cited, documents, level)[0] for s in sentences]
    return list(claims)


def _regions(passages: Sequence[Passage], by_id: Mapping[Any, SourceDocument]
             ) -> list[tuple[SourceDocument, int, int]]:
    """The passages' spans widened by ``EVIDENCE_CHARS`` each side, merged where they
    overlap, per document: (document, start, end)."""
    spans: dict[Any, list[list[int]]] = {}
    for p in sorted(passages, key=lambda p: (str(p.document_id), p.start)):
        if p.document_id not in by_id:
            continue
        lo, hi = max(0, p.start - EVIDENCE_CHARS), p.end + EVIDENCE_CHARS
        merged = spans.setdefault(p.document_id, [])
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    out = []
    for document_id, ranges in spans.items():
        document = by_id[document_id]
        for lo, hi in ranges:
            end = lo + len(document.span(lo, hi))  # cut at the text's end
            out.append((document, lo, end))
    return out


def supports(sentence: str, quote: str, level: str = "normal",
             question: str = QUESTION.format(words=100)) -> bool:
    """Whether the grounding check finds ``sentence`` supported with ``quote`` as the only
    text (what a citation of that span claims)."""
    return _verdict(sentence, quote, level, question)[0]


def attests(sentence: str, quote: str, level: str = ATTACH_LEVEL,
            question: str = QUESTION.format(words=100)) -> bool:
    """Whether the attaching rule (``_attested``) cites ``quote`` alone for ``sentence``."""
    supported, claims = _verdict(sentence, quote, level, question)
    return supported and len(claims) == 1 and _attested(sentence, claims[0], level)


def _verdict(sentence: str, quote: str, level: str, question: str
             ) -> tuple[bool, list[dict[str, Any]]]:
    alone = SourceDocument(0, "span", quote)
    verdict = check(question, sentence, [Citation(0, 0, len(quote), quote)], [alone], level)
    claims = verdict.notes.get("claims") or []
    return bool(claims) and all(c.get("supported") for c in claims), claims


# -- Numbering across the whole text --------------------------------------------------------

@dataclass(frozen=True)
class Reference:
    number: int
    document_id: Any
    start: int
    end: int
    quote: str


def number_citations(sections: Iterable[tuple[str, Sequence[Mapping[str, Any]]]]
                     ) -> tuple[list[str], list[Reference]]:
    """Section texts with section-local markers → the same texts numbered across the
    whole text (one number per span, in order of first use), and the reference list."""
    numbers: dict[tuple[Any, int, int], Reference] = {}
    texts = []
    for text, citations in sections:
        def renumber(m: re.Match[str], citations=citations) -> str:
            k = int(m.group(1))
            if not 1 <= k <= len(citations):
                return m.group(0)
            c = citations[k - 1]
            key = (c["document_id"], c["start"], c["end"])
            if key not in numbers:
                numbers[key] = Reference(len(numbers) + 1, *key, c["quote"])
            return f"[{numbers[key].number}]"

        texts.append(MARKER.sub(renumber, text) if citations else text)
    return texts, list(numbers.values())


def link_markers(text: str, link: Callable[[int], str | None]) -> str:
    """Each marker ``[n]`` as what ``link(n)`` gives (None: left as it is)."""
    def replace(m: re.Match[str]) -> str:
        out = link(int(m.group(1)))
        return m.group(0) if out is None else out

    return MARKER.sub(replace, text)


def citation_stats(texts: Iterable[str]) -> dict[str, float]:
    """Citation density of a text: markers per 100 words and the share of prose
    sentences carrying one."""
    from workers.writing.length import count_words  # noqa: PLC0415 - see module docstring

    words = sentences = cited = markers = 0
    for text in texts:
        words += count_words(MARKER.sub("", text))
        for s, e in sentence_units(text):
            if _NOT_PROSE.match(text[s:e]):
                continue
            sentences += 1
            found = len(MARKER.findall(text[s:e]))
            cited += bool(found)
            markers += found
    return {"words": words, "sentences": sentences, "cited_sentences": cited,
            "markers": markers,
            "per_100_words": round(100 * markers / words, 2) if words else 0.0,
            "cited_share": round(cited / sentences, 3) if sentences else 0.0}


# -- Planning from the sources --------------------------------------------------------------

def source_topics(headings: Mapping[Any, Sequence[str]], key_passages: Sequence[str],
                  limit: int = MAX_TOPICS) -> list[str]:
    """What the sources hold, as plan topics: their headings (documents in order, each
    heading once), then for documents without headings the first sentence of the passages
    retrieved for the instruction (cut to ``TOPIC_WORDS``)."""
    seen: set[str] = set()
    out: list[str] = []

    def add(topic: str) -> None:
        topic = " ".join(topic.split()).strip(" .:;-–#*")
        key = topic.lower()
        if len(topic) >= 3 and key not in seen and len(out) < limit:
            seen.add(key)
            out.append(topic)

    for titles in headings.values():
        for title in titles:
            add(title)
    for passage in key_passages:
        units = sentence_units(passage)
        first = passage[units[0][0]:units[0][1]] if units else passage
        add(" ".join(first.split()[:TOPIC_WORDS]))
    return out
