"""Writing from a library: topics for the plan, passages per section, and numbered citations
that only a supported sentence gets.

A section is written from passages retrieved for its point (exact spans of the reference
documents). Afterwards each of its sentences is checked, against those passages and the
text around them (``EVIDENCE_CHARS``), by the QA grounding check
(``workers.qa.grounding.check``, the same check that vets chat answers: the sentence's
names, numbers and content words in a cited passage or a sentence of the documents, or an
embedding close to it). A supported sentence gets a marker ``[k]`` and the exact span that
supports it; an unsupported one stays as written, without a citation: a small model's
prose is kept, but nothing it invented is dressed as sourced. Markers the model wrote
itself (it sees the passages numbered) are removed first: only the check gives citations.

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
from workers.qa.grounding import MAX_CLAIMS, NEIGHBOURS, check
from workers.qa.types import Citation, Passage, SourceDocument

# "[3]", "[^3]", "[12, 13]" written by the model: it saw the passages numbered.
MODEL_MARKER = re.compile(r"[ \t]?\[\^?\d{1,3}(?:\s*[,;–-]\s*\d{1,3})*\]")
# Our markers in a stored section text (the model's were removed before ours went in).
MARKER = re.compile(r"\[(\d{1,3})\]")
MARKER_WITH_SPACE = re.compile(r" ?\[\d{1,3}\]")
# A sentence's closing punctuation (and closing quotes/brackets/emphasis): the marker goes
# before it ("… in 1998 [2]."). Found by walking back from the end, not by a regex anchored
# at $ (searched from every start, that is quadratic in a run of "!").
_STOPS, _CLOSERS = ".!?…", "\"”’)]*_"
# Lines that are no claim: headings, table rows, separators.
_NOT_PROSE = re.compile(r"^\s*(?:#|\||-{3,}|\*{3,}|_{3,})")
# The check's question: a summary of the sources to a length, so that each sentence is
# judged on its substance (is it in the documents?) and not on relevance to a question.
QUESTION = "Summarise the reference documents in {words} words."
PASSAGES = 3  # retrieved per section (the prompt's reference material)
EVIDENCE_CHARS = 1500  # the text around each passage searched for a sentence's support
TOPIC_PASSAGES = 8  # retrieved for the instruction, as plan topics (documents without headings)
TOPIC_WORDS = 12  # a key passage as a plan topic: its first sentence, cut to this
MAX_TOPICS = 40


@dataclass
class CitedText:
    text: str  # with markers [1]..[n] (section-local)
    citations: list[dict[str, Any]]  # marker k → citations[k - 1]: document_id, start, end, quote
    sentences: int  # prose sentences checked
    cited: int  # of them supported, so cited
    removed_markers: int  # markers the model wrote itself, removed
    unsupported: list[str] = field(default_factory=list)  # sentences left uncited (trace)

    def to_dict(self) -> dict[str, Any]:
        return {"sentences": self.sentences, "cited": self.cited,
                "removed_markers": self.removed_markers,
                "unsupported": [s[:200] for s in self.unsupported[:20]]}


@dataclass
class Library:
    """The reference documents a text is written from: their texts (for the check), a
    retriever of exact-span passages (the project's search), and the topics the plan is
    built from (``source_topics``)."""

    documents: list[SourceDocument]
    retrieve: Callable[[str, int], list[Passage]]
    topics: list[str] = field(default_factory=list)
    level: str = "normal"  # grounding strictness (workers.qa.grounding.LEVELS)

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
         words: int, level: str = "normal") -> CitedText:
    """``text`` with a marker on each sentence the grounding check finds supported, and
    the span that supports it (see the module docstring). ``passages``: what the section
    was written from (checked first, as the cited spans of an answer are)."""
    text, removed = strip_model_markers(text)
    units = [(s, e) for s, e in sentence_units(text) if not _NOT_PROSE.match(text[s:e])]
    by_id = {d.id: d for d in documents}
    # The check searches the section's evidence (its passages with EVIDENCE_CHARS around
    # them), not the whole library: its cost follows the section, not the library's size.
    regions = _regions(passages, by_id)
    evidence = [SourceDocument(k, document.title, document.span(lo, hi))
                for k, (document, lo, hi) in enumerate(regions)]
    cited_spans = [Citation(k, p.start - lo, p.end - lo, document.span(p.start, p.end))
                   for p in passages for k, (document, lo, hi) in enumerate(regions)
                   if document.id == p.document_id and lo <= p.start and p.end <= hi]
    question = QUESTION.format(words=max(words, 1))
    support: dict[int, Citation] = {}
    unsupported: list[str] = []
    for first in range(0, len(units), MAX_CLAIMS):
        batch = units[first:first + MAX_CLAIMS]
        found = {}  # sentence start → the evidence the check found: (document, start, end)
        for (s, e), claim in zip(batch, _judge(question, [text[s:e] for s, e in batch],
                                               cited_spans, evidence, level), strict=True):
            if claim is not None and claim.get("supported"):
                document, lo, _ = regions[claim["document_id"]]
                found[s] = (text[s:e], document, lo + claim["start"], lo + claim["end"])
        alone = _evidence_alone(question, list(found.values()), level)
        for s, e in batch:
            span = None
            if s in found:
                sentence, document, start, end = found[s]
                span = alone.get(sentence) or _span_alone(question, sentence, document, start,
                                                          end, level, evidence_tried=True)
            if span is not None:
                support[s] = span
            else:
                unsupported.append(text[s:e])
    numbers: dict[tuple[Any, int, int], int] = {}
    out, last = [], 0
    for s, e in units:
        if s not in support:
            continue
        c = support[s]
        number = numbers.setdefault((c.document_id, c.start, c.end), len(numbers) + 1)
        out += [text[last:s], _mark(text[s:e], number)]
        last = e
    out.append(text[last:])
    spans = sorted(numbers.items(), key=lambda kv: kv[1])
    citations = [{"document_id": key[0], "start": key[1], "end": key[2],
                  "quote": by_id[key[0]].span(key[1], key[2])} for key, _ in spans]
    return CitedText("".join(out), citations, len(units), len(support), removed, unsupported)


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


def _evidence_alone(question: str, found: list[tuple[str, SourceDocument, int, int]],
                    level: str) -> dict[str, Citation]:
    """{sentence: its evidence span} for the sentences whose evidence supports them alone,
    in one check (one embedder pass): each evidence span is a document of its own, and a
    sentence counts only when the span it is supported by is its own. The rest go to
    ``_span_alone``."""
    if not found:
        return {}
    spans = [SourceDocument(k, "span", document.span(start, end))
             for k, (_, document, start, end) in enumerate(found)]
    cited = [Citation(k, 0, len(d.text), d.text) for k, d in enumerate(spans)]
    claims = _judge(question, [sentence for sentence, *_ in found], cited, spans, level)
    keys = [(document.id, start, end) for _, document, start, end in found]
    out = {}
    for k, ((sentence, document, start, end), claim) in enumerate(zip(found, claims,
                                                                      strict=True)):
        by = claim.get("document_id") if claim is not None and claim.get("supported") else None
        if by is not None and keys[by] == keys[k]:  # its own span (or the same span)
            out[sentence] = make_citation(document, start, end)
    return out


def _span_alone(question: str, sentence: str, document: SourceDocument, start: int, end: int,
                level: str, evidence_tried: bool = False) -> Citation | None:
    """The span to cite for a sentence the check found supported by the evidence at
    ``start:end``: that evidence alone when it supports the sentence by itself, else the
    evidence with its neighbouring sentences (the check reads evidence with them), else
    None. Each is checked again with nothing else of the documents to search: the quote
    shown must hold the support, not only a sentence next to it. (Each neighbour alone
    would give tighter quotes, at one embedder pass more per try: too slow on 2 cores.)"""
    units = _around(document, start, end)
    candidates = [(start, end), (units[0][0], units[-1][1])] if units else [(start, end)]
    for a, b in dict.fromkeys(candidates):
        if evidence_tried and (a, b) == (start, end):
            continue
        if supports(sentence, document.span(a, b), level, question):
            return make_citation(document, a, b)
    return None


def supports(sentence: str, quote: str, level: str = "normal",
             question: str = QUESTION.format(words=100)) -> bool:
    """Whether the grounding check finds ``sentence`` supported with ``quote`` as the only
    text (what a citation of that span claims)."""
    alone = SourceDocument(0, "span", quote)
    verdict = check(question, sentence, [Citation(0, 0, len(quote), quote)], [alone], level)
    claims = verdict.notes.get("claims") or []
    return bool(claims) and all(c.get("supported") for c in claims)


def _around(document: SourceDocument, start: int, end: int) -> list[tuple[int, int]]:
    """The sentences of ``start:end`` and ``NEIGHBOURS`` on each side (what the check reads
    as evidence), in order; [] when none is found."""
    lo, hi = max(0, start - 600), end + 600
    units = [(s + lo, e + lo) for s, e in sentence_units(document.span(lo, hi))]
    inside = [i for i, (s, e) in enumerate(units) if s < end and e > start]
    if not inside:
        return []
    return units[max(0, inside[0] - NEIGHBOURS):inside[-1] + NEIGHBOURS + 1]


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
