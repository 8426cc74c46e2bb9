"""Citations: exact character spans of source documents that support an answer.

Every citation satisfies ``document.text[start:end] == quote``. Quotes written by a model
are located in the text it read: exactly, else ignoring case and spacing, else the most
similar sentence (fuzzy), else dropped (a quote that is not in the source is no evidence).
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Sequence
from difflib import SequenceMatcher

from workers.documents.chunking import sentence_spans
from workers.documents.lexical import BM25Index

from .extract import candidates
from .types import Citation, SourceDocument

FUZZY_THRESHOLD = 0.6
FUZZY_CANDIDATES = 40  # units compared by difflib, those sharing most words
# A "sentence" longer than this (a table row, a line without full stops) is cut into
# pieces, so that scoring and citing stay sentence-sized.
MAX_UNIT_CHARS = 1200


def sentence_units(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentence spans of ``text[start:end]`` in ``text`` coordinates, long ones cut at spaces."""
    end = len(text) if end is None else end
    out: list[tuple[int, int]] = []
    for s, e in sentence_spans(text[start:end]):
        s, e = s + start, e + start
        while e - s > MAX_UNIT_CHARS:
            cut = text.rfind(" ", s + MAX_UNIT_CHARS // 2, s + MAX_UNIT_CHARS)
            cut = cut if cut > s else s + MAX_UNIT_CHARS
            out.append((s, cut))
            s = cut
            while s < e and text[s].isspace():
                s += 1
        if e > s:
            out.append((s, e))
    return out


def make_citation(document: SourceDocument, start: int, end: int) -> Citation:
    # Through ``span``: a citation reads its span, not the whole document (rag).
    start = max(0, start)
    quote = document.span(start, max(start, end))  # cut at the text's end
    return Citation(document.id, start, start + len(quote), quote)


def is_valid(citation: Citation, documents: Sequence[SourceDocument]) -> bool:
    for doc in documents:
        if doc.id == citation.document_id:
            return (
                0 <= citation.start < citation.end
                and len(citation.quote) == citation.end - citation.start
                and doc.span(citation.start, citation.end) == citation.quote
            )
    return False


def locate(quote: str, text: str, start: int = 0, end: int | None = None) -> tuple[int, int] | None:
    """Span of ``quote`` in ``text[start:end]``: exact, loose (case/spacing), else fuzzy."""
    end = len(text) if end is None else end
    quote = quote.strip().strip("\"'“”‘’").strip()
    if len(quote) < 4:
        return None
    pos = text.find(quote, start, end)
    if pos >= 0:
        return pos, pos + len(quote)
    words = quote.split()
    loose = re.compile(r"\s+".join(re.escape(w) for w in words), re.IGNORECASE)
    m = loose.search(text, start, end)
    if m:
        return m.start(), m.end()
    return _fuzzy(quote, text, start, end)


def _fuzzy(quote: str, text: str, start: int, end: int) -> tuple[int, int] | None:
    """The sentence (or pair of neighbouring sentences) most similar to the quote.

    Only the units that share the most words with the quote are compared character by
    character: difflib over every unit of a long text took tens of seconds per quote."""
    target = " ".join(quote.lower().split())
    units = sentence_units(text, start, end)
    wanted = set(target.split())
    spans = []
    for i, (s, _e) in enumerate(units):
        for j in (i, i + 1):
            if j >= len(units):
                break
            span = (s, units[j][1])
            if span[1] - span[0] > 6 * len(target) + 200:  # far longer than the quote
                continue
            words = set(text[span[0] : span[1]].lower().split())
            spans.append((len(wanted & words) / (len(wanted) or 1), span))
    best, best_ratio = None, FUZZY_THRESHOLD
    closest = heapq.nlargest(FUZZY_CANDIDATES, spans, key=lambda t: t[0])
    for _overlap, span in sorted(closest, key=lambda t: t[1]):  # text order: earliest wins ties
        candidate = " ".join(text[span[0] : span[1]].lower().split())
        if len(candidate) > 3 * len(target) + 40:
            continue
        matcher = SequenceMatcher(None, target, candidate, autojunk=False)
        if matcher.quick_ratio() <= best_ratio:
            continue
        ratio = matcher.ratio()
        if ratio > best_ratio:
            best, best_ratio = span, ratio
    return best


QUOTE = re.compile(r"[\"“]([^\"“”]{12,600})[\"”]")


def quoted(text: str) -> list[str]:
    """Strings a model put in double quotes (its verbatim evidence)."""
    return [m.group(1).strip() for m in QUOTE.finditer(text)]


def dedupe(citations: Iterable[Citation]) -> list[Citation]:
    seen: set[tuple[object, int, int]] = set()
    out = []
    for c in citations:
        key = (c.document_id, c.start, c.end)
        if key not in seen and c.end > c.start:
            seen.add(key)
            out.append(c)
    return out


def supporting_citations(
    answer: str,
    question: str,
    documents: Sequence[SourceDocument],
    limit: int = 3,
) -> list[Citation]:
    """Sentences that support ``answer``: those containing its key strings (numbers, codes),
    else the best BM25 matches of answer + question over the sentences."""
    units = [(doc, s, e) for doc in documents for s, e in sentence_units(doc.text)]
    if not units:
        return []
    found: list[Citation] = []
    for key in candidates(answer):
        for doc, s, e in units:
            if re.search(rf"(?<![\w]){re.escape(key)}(?![\w])", doc.text[s:e]):
                found.append(make_citation(doc, s, e))
                break
    if found:
        return dedupe(found)[:limit]
    index = BM25Index([doc.text[s:e] for doc, s, e in units])
    hits = index.search(f"{answer} {question}", k=limit)
    return dedupe(make_citation(*units[i]) for i, _ in hits)
