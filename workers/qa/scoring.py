"""Relevance scores shared by the strategies.

- ``question_nll``: XL3M's score, the mean negative log-likelihood of the question tokens
  given a piece of text (lower = the text makes the question more expected = relevant).
  Measured here: it ranks a needle segment first where the mean entropy does not.
- ``prefilter``: cheap lexical (BM25) + dense (the embedder) ranking fused by RRF, with
  the search index's matches and the answer-type arm (``answer_types``) when given, used to
  cut the candidates before the model scores them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from workers.config import current
from workers.documents.embeddings import get_embedder
from workers.documents.lexical import BM25Index, rrf
from workers.llm.base import concurrency

from .answer_types import CODE, question_kinds, typed_order
from .citations import sentence_units
from .prompts import scoring_continuation
from .retrieval import matched_sentences
from .run import Run, arm_failed
from .types import Passage, SourceDocument


@dataclass(frozen=True)
class Span:
    document: SourceDocument
    start: int
    end: int

    @property
    def text(self) -> str:
        return self.document.span(self.start, self.end)


@dataclass(frozen=True)
class ScoredSpan:
    span: Span
    score: float  # mean NLL of the question tokens; lower is more relevant
    position: int  # order in the input


def question_nll(
    run: Run, question: str, texts: Sequence[str], batch_size: int | None = None
) -> list[float]:
    """Mean NLL of the question after each text, ``batch_size`` texts a call (default: as
    many as the backend runs at once)."""
    continuation = scoring_continuation(question)
    pairs = [(text if text.strip() else ".", continuation) for text in texts]
    return [r.mean_nll for r in run.score(pairs, batch_size=batch_size or concurrency(run.backend))]


def rank_spans(run: Run, question: str, spans: Sequence[Span]) -> list[ScoredSpan]:
    """Spans scored with ``question_nll``, best (lowest) first; ties keep input order."""
    scores = question_nll(run, question, [s.text for s in spans])
    scored = [
        ScoredSpan(s, score, i) for i, (s, score) in enumerate(zip(spans, scores, strict=True))
    ]
    return sorted(scored, key=lambda x: (x.score, x.position))


def dense_scores(question: str, texts: Sequence[str]) -> list[float] | None:
    """Cosine similarity of each text with the question by the configured embedder and
    LongEmbed strategy (``workers.config``: the index's), or None when it fails (the other
    rankings are used alone; the failure is logged and traced, ``arm_failed``)."""
    try:
        from workers.documents.longembed import embed_long  # imports torch: at first use

        embedder = get_embedder()
        query = embedder.embed([question])[0]
        vectors = embed_long(embedder, list(texts), current().embedder.strategy)
    except Exception as exc:  # an optional arm: the answer goes on without it
        arm_failed("dense ranking", exc)
        return None
    return [float(x) for x in vectors @ query]


def dense_ranking(question: str, texts: Sequence[str]) -> list[int] | None:
    """Indices by ``dense_scores``, most similar first (None without an embedder)."""
    sims = dense_scores(question, texts)
    if sims is None:
        return None
    return sorted(range(len(texts)), key=lambda i: -sims[i])


def dense_best_region(question: str, regions: Sequence[Span]) -> int | None:
    """Index of the region holding the sentence most similar to the question (embedder).

    Sentence level on purpose: averaged over a 1k-token segment, one relevant sentence is
    lost in the rest (measured: a paraphrased needle's segment ranked 0-8 of 9 by segment
    vectors, its sentence first of ~45 inside it)."""
    owners, texts = [], []
    for i, r in enumerate(regions):
        for sentence in sentences_in([r]):
            owners.append(i)
            texts.append(sentence.text)
    order = dense_ranking(question, texts) if texts else None
    return owners[order[0]] if order else None


def typed_ranking(question: str, texts: Sequence[str], order: Sequence[int]) -> list[int] | None:
    """The indices of ``order`` (a ranking of ``texts``, best first) whose text holds an
    answer of the question's kind (``answer_types``; a code question's by code shape first),
    in that order; None when the question does not say what kind of answer it wants."""
    typed = typed_order(question, [texts[i] for i in order])
    return None if typed is None else [order[j] for j in typed]


def fuse_with_dense(question: str, ranked: Sequence[ScoredSpan]) -> list[ScoredSpan]:
    """``ranked`` (by likelihood) re-ordered by RRF with the embedder's ranking of the same
    spans; unchanged when no embedder is available.

    A third arm joins for a question that says what kind of answer it wants: the spans
    holding such an answer, in the embedder's order (``typed_ranking``). For a code
    question its first pick leads: likelihood and embedder both judge "The lock on the old
    shed opens with the sequence 69751." unrelated to "What is the pass key?" (5th of 7
    sentences in the unit test, behind sentences about keys and passes); only its answer
    type ties it to the question. For other kinds it is one more vote (a name or a number
    is far commoner in prose than a code)."""
    texts = [r.span.text for r in ranked]
    dense_order = dense_ranking(question, texts)
    if dense_order is None:
        return list(ranked)
    arms = [list(range(len(ranked))), dense_order]
    typed = typed_ranking(question, texts, dense_order)
    if typed:
        arms.append(typed)
    lead = 1 if typed and CODE in question_kinds(question) else 0
    fused = rrf(arms, lead=lead)
    return [ranked[int(i)] for i, _ in fused]  # type: ignore[call-overload]


def prefilter(
    question: str,
    texts: Sequence[str],
    top_n: int,
    dense: bool = True,
    extra: Sequence[list[int]] = (),
    typed: bool = False,
) -> tuple[list[int], dict[str, object]]:
    """The ``top_n`` most promising texts (indices, input order) and what ranked them.
    ``extra``: more rankings of the same texts to fuse (e.g. the search index's);
    ``typed``: also the texts holding an answer of the question's kind (``typed_ranking``
    over the embedder's order, else BM25's)."""
    if len(texts) <= top_n:
        return list(range(len(texts))), {"method": "none (all candidates kept)"}
    lexical = [i for i, _ in BM25Index(list(texts)).search(question, k=len(texts))]
    rankings: list[list[int]] = [lexical]
    method = "bm25"
    dense_order = dense_ranking(question, texts) if dense else None
    if dense_order is not None:
        rankings.append(dense_order)
        method = "bm25+dense (rrf)"
    arms = [list(r) for r in extra]
    method += " + search index" if extra else ""
    by_type = typed_ranking(question, texts, dense_order or lexical) if typed else None
    if by_type:
        arms.append(by_type)
        method += " + answer type"
    kept = _fuse(rankings, arms, top_n, fill=range(len(texts)))
    return kept, {"method": method, "bm25_top": lexical[:top_n], "kept": kept}


def _fuse(
    rankings: list[list[int]], extra: Sequence[list[int]], top_n: int, fill: Iterable[int]
) -> list[int]:
    """RRF of the rankings in which every arm's best picks lead, an equal share of the
    ``top_n`` each (one arm's confident pick is never outvoted by items the others rank
    middling), filled up from ``fill``; ``top_n`` indices in input order."""
    arms = [*rankings, *extra]
    fused = [int(i) for i, _ in rrf(arms, lead=max(1, top_n // max(1, len(arms))))]  # type: ignore[call-overload]
    seen = set(fused)
    fused += [i for i in fill if i not in seen]  # BM25 ranks only texts sharing a word
    out: list[int] = []
    for i in fused:
        if i not in out:
            out.append(i)
        if len(out) == top_n:
            break
    return sorted(out)


def index_ranking(spans: Sequence[Span], passages: Sequence[Passage]) -> list[int]:
    """Indices of ``spans`` holding the sentences the search index matched
    (``matched_sentences``): the stored sentence vectors' verdict, with no embedding at
    question time."""
    by_document: dict[object, list[int]] = {}
    for i, span in enumerate(spans):
        by_document.setdefault(span.document.id, []).append(i)
    out: list[int] = []
    for document_id, start, end in matched_sentences(passages):
        for i in by_document.get(document_id, ()):
            if spans[i].start < end and start < spans[i].end and i not in out:
                out.append(i)
    return out


def prefilter_sentences(
    question: str,
    spans: Sequence[Span],
    top_n: int,
    dense: bool = True,
    passages: Sequence[Passage] = (),
) -> tuple[list[int], dict[str, object]]:
    """``prefilter`` over sentence spans with the answer-type arm and, given the search
    index's ``passages``, the sentences it matched (``index_ranking``). ``dense``: also
    embed the spans (a few hundred sentences, never the corpus)."""
    matched = index_ranking(spans, passages) if passages else []
    return prefilter(
        question,
        [s.text for s in spans],
        top_n,
        dense=dense,
        extra=[matched] if matched else [],
        typed=True,
    )


def prefilter_by_index(
    question: str,
    segments: Sequence[Span],
    top_n: int,
    passages: Sequence[Passage],
) -> tuple[list[int], dict[str, object]]:
    """About ``top_n`` segments holding the search index's best ``passages`` (retrieved for
    about ``2 * top_n``; the index fuses passage, sentence and answer-type rankings), in
    input order, filled up from BM25 over the segments."""
    if len(segments) <= top_n:
        return list(range(len(segments))), {"method": "none (all candidates kept)"}
    by_document: dict[object, list[int]] = {}
    for i, seg in enumerate(segments):
        by_document.setdefault(seg.document.id, []).append(i)
    from_index: list[int] = []
    for p in passages:  # a passage across a boundary brings both segments
        for i in by_document.get(p.document_id, ()):
            seg = segments[i]
            if seg.start < p.end and p.start < seg.end and i not in from_index:
                from_index.append(i)
    fill: Iterable[int] = range(len(segments))
    if len(from_index) < top_n:
        lexical = BM25Index([s.text for s in segments]).search(question, k=len(segments))
        fill = [*(i for i, _ in lexical), *range(len(segments))]
    kept = _fuse([from_index], [], top_n, fill)
    return kept, {
        "method": "search index (passages + sentences + answer type)",
        "passages": len(passages),
        "from_index": from_index[:top_n],
        "kept": kept,
    }


def sentences_in(regions: Sequence[Span]) -> list[Span]:
    """The sentence units of each region, cut from the region's own text (a region of a
    document not read whole costs only its span)."""
    return [
        Span(r.document, r.start + s, r.start + e)
        for r in regions
        for s, e in sentence_units(r.text)
    ]


def lexical_sentences(question: str, regions: Sequence[Span], k: int = 5) -> list[Span]:
    """Sentences of ``regions`` ranked by BM25 against the question, best first (cheap)."""
    spans = sentences_in(regions)
    if not spans:
        return []
    return [spans[i] for i, _ in BM25Index([s.text for s in spans]).search(question, k=k)]
