"""QA quality benchmark: can people trust the answers? Per strategy and length.

    python -m bench qa_quality [--lengths 8000 32000 128000 1000000]
        [--strategies auto rag xl3m coa] [--registers essays transcript report]
        [--kinds person organisation …] [--per-kind 1] [--unanswerable 4]
        [--loogle-documents 1] [--loogle-questions 2] [--loogle-strategies …]
        [--index ingest|memory] [--seed 0] [--data /work/shared/data] [--report-only]

Haystacks (``bench.qa_facts``): per length, documents in three registers (essays,
transcript, report) hold paraphrased facts of every kind — person, organisation, place,
date, weekday, quantity, title, code — at random depths; each fact is asked for in other
words, and *unanswerable* questions ask for a fact that is in no document. LooGLE
long-dependency QA adds real questions with gold evidence. Every document goes through the
app's ingest (``ingest_bytes``: extract, chunk, embed) and is searched as the app searches
its stored chunks (dense + lexical, fused by RRF), built once per document outside the
timed question → answer; every strategy gets that ``retrieve``, as chat passes it.

Reported per strategy and length: answer accuracy, evidence recall (a citation covers the
gold evidence), abstention on unanswerable questions, false abstention on answerable ones,
answers carrying prompt markup, and seconds. Writes results.json (after every answer),
results.md and qa_quality.png into OUT/qa_quality.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.machine import describe_machine  # noqa: E402
from bench.qa_facts import (  # noqa: E402
    KINDS,
    REGISTERS,
    Document,
    LoogleQuestion,
    accepted,
    load_loogle,
    load_sources,
    plan_documents,
    tokens_of,
)
from bench.qa_quality_report import CONTAINMENT_CORRECT, STRATEGIES, report  # noqa: E402
from workers.documents.lexical import BM25Index, rrf  # noqa: E402
from workers.qa.haystack import STOPWORDS  # noqa: E402
from workers.qa.types import Passage, SourceDocument  # noqa: E402

DEFAULT_DATA = Path("/work/shared/data")
TEXTS = "texts.json"  # the ingested documents' text, by id, for --rescore

# An answer "abstains" when the engine says so (an ``abstained`` field, once it has one)
# or, before that, when its text says the documents do not give the answer.
_ABSTAIN = re.compile(
    r"\b(?:cannot|can't|can not|could not|couldn't|unable to)\s+(?:find|locate|determine|"
    r"answer|tell)|\bdo(?:es)?\s*(?:n't|not)\s+(?:appear\s+to\s+)?(?:answer|say|mention|"
    r"contain|state|specify|include|provide)|\bnot\s+(?:mentioned|stated|specified|given|"
    r"provided|found|included)\b|\bno\s+(?:information|mention)\b|\bdon't know\b",
    re.IGNORECASE,
)
# Prompt markup that must never reach an answer: our delimiter tags (also defanged or
# partial), their attribute strings, and the instructions (phrases from workers.qa.prompts).
_MARKUP = re.compile(
    r"<\s*/?\s*(?:document|notes|question)\b|\b(?:part|title|id)\s*=\s*[\"']", re.IGNORECASE
)


# -- the index, as the app builds it at ingest ----------------------------------------------


class IngestedDocument:
    """A document after the app's ingest (``ingest_bytes``: extract, chunk to the embedder's
    window, embed), with a retriever over what the app stores, searched as
    ``apps.documents.search`` searches it: cosine over the chunk vectors and a lexical arm
    (BM25 here, Postgres full text there), each ``max(3k, 20)`` deep, and, where ingest
    stores sentence windows (small-to-big), the windows closest to the query, all fused by
    the engine's ``fuse_small_to_big`` (else by RRF with each arm's two best kept)."""

    def __init__(self, doc_id: str, title: str, data: bytes, index: str = "ingest") -> None:
        from workers.documents.embeddings import get_embedder
        from workers.documents.pipeline import ingest_bytes

        began = time.perf_counter()
        result = ingest_bytes(data)
        self.document = SourceDocument(doc_id, title, result.document.text)
        self.chunks = result.chunks
        self.vectors = result.vectors
        # The sentence index, where ingest builds one: (chunk, start, end) and vectors.
        windows = getattr(result, "windows", None)
        self.windows = [(i, s, e) for i, spans in enumerate(windows or []) for s, e in spans]
        parts = [v for v in getattr(result, "window_vectors", None) or [] if len(v)]
        self.window_vectors = np.concatenate(parts) if parts else None
        if index == "memory":  # the engine's own in-memory index over the ingested text
            from workers.qa.retrieval import InMemoryRetriever

            self.retrieve: Callable[[str, int], list[Passage]] = InMemoryRetriever(
                [self.document], dense=True)
        else:
            self._embedder = get_embedder()
            self._bm25 = BM25Index([c.text for c in self.chunks]) if self.chunks else None
            self.retrieve = self._search
        self.seconds = round(time.perf_counter() - began, 2)

    def _sentence_hits(self, vector: np.ndarray, retrieval: Any) -> list[Any]:
        if self.window_vectors is None or len(self.window_vectors) != len(self.windows):
            return []
        sims = self.window_vectors @ vector
        best = np.argsort(-sims, kind="stable")[: getattr(retrieval, "SENTENCE_DEPTH", 300)]
        text = self.document.text
        return [retrieval.SentenceHit(self.windows[j][0], self.windows[j][1], self.windows[j][2],
                                      text[self.windows[j][1] : self.windows[j][2]])
                for j in map(int, best)]

    def _search(self, query: str, k: int) -> list[Passage]:
        from workers.qa import retrieval

        if self._bm25 is None or k < 1:
            return []
        depth = max(k * 3, 20)
        vector = self._embedder.embed([query])[0]
        dense = [int(i) for i in np.argsort(-(self.vectors @ vector), kind="stable")[:depth]]
        lexical = [i for i, _ in self._bm25.search(query, k=depth)]
        fuse = getattr(retrieval, "fuse_small_to_big", None)
        hits = self._sentence_hits(vector, retrieval) if fuse else []
        if hits:
            fused, evidence = fuse(query, [dense, lexical], hits)
        else:
            fused, evidence = rrf([dense, lexical], lead=2), {}
        out = []
        for i, score in fused[:k]:
            c = self.chunks[int(i)]  # type: ignore[call-overload]
            spans = tuple((h.start, h.end) for h in evidence.get(i, ()))
            args = (self.document.id, c.start, c.end, c.text, float(score))
            out.append(Passage(*args, spans) if spans else Passage(*args))  # type: ignore
        return out


# -- scoring ----------------------------------------------------------------------------


def covers(citation: tuple[int, int], gold: tuple[int, int]) -> bool:
    """A citation covers gold evidence when they overlap by at least half of the shorter:
    a passage holding the sentence, or a quote inside it, not a brush at its edge."""
    overlap = min(citation[1], gold[1]) - max(citation[0], gold[0])
    shorter = min(citation[1] - citation[0], gold[1] - gold[0])
    return shorter > 0 and overlap * 2 >= shorter


def evidence_covered(citations: Iterable[tuple[int, int]], gold: Sequence[tuple[int, int]]
                     ) -> list[bool]:
    """For each gold span, whether some citation covers it."""
    spans = list(citations)
    return [any(covers(c, g) for c in spans) for g in gold]


def abstained(result: Any) -> tuple[bool, str]:
    """Whether the answer abstains, and how we know: the engine's ``abstained`` field
    where it has one, else the answer's words."""
    field = getattr(result, "abstained", None)
    if isinstance(field, bool):
        return field, "field"
    return bool(_ABSTAIN.search(getattr(result, "text", "") or "")), "text"


def _instruction_phrases() -> list[str]:
    """The first six words of every sentence of the engine's instructions."""
    from workers.qa import prompts

    phrases = []
    for name in dir(prompts):
        value = getattr(prompts, name)
        if name.isupper() and isinstance(value, str):
            for sentence in re.split(r"(?<=[.:])\s+", value):
                words = sentence.split()
                if len(words) >= 6:
                    phrases.append(" ".join(words[:6]).lower())
    return sorted(set(phrases))


_PHRASES: list[str] | None = None


def markup_found(text: str, phrases: Sequence[str] | None = None) -> list[str]:
    """Prompt markup in an answer: tags, attribute strings, instruction sentences."""
    global _PHRASES
    if phrases is None:
        if _PHRASES is None:
            _PHRASES = _instruction_phrases()
        phrases = _PHRASES
    found = [m.group(0) for m in _MARKUP.finditer(text)]
    flat = " ".join(text.lower().split())
    return found + [p for p in phrases if p in flat]


def containment(answer: str, gold: str) -> float:
    """The share of the gold answer's content words (lower case, digit groups joined, no
    stopwords) that the answer contains."""
    want = [t for t in tokens_of(gold) if t not in STOPWORDS]
    if not want:
        return 0.0
    have = set(tokens_of(answer))
    return sum(t in have for t in want) / len(want)


# -- running ----------------------------------------------------------------------------


def _ask(question: str, ingested: IngestedDocument, strategy: str, llm: Any,
         level: str = "normal") -> dict[str, Any]:
    """One answer: the strategy's draft (``answer()`` with grounding off) and then the
    grounding check at ``level`` applied to it exactly as ``answer()`` applies it at its end,
    so the draft and its own citations are kept for ``--rescore``."""
    from workers.llm.errors import ContextOverflow
    from workers.qa import answer

    began = time.perf_counter()
    try:
        result = answer(question, [ingested.document], strategy, backend=llm,
                        retrieve=ingested.retrieve, grounding="off")
    except ContextOverflow as exc:
        return {"refused": str(exc), "seconds": round(time.perf_counter() - began, 2)}
    except Exception as exc:  # one failing answer must not end a long run
        traceback.print_exc()
        return {"error": f"{type(exc).__name__}: {exc}",
                "seconds": round(time.perf_counter() - began, 2)}
    row = {"draft": result.text[:2000], "strategy_used": result.strategy,
           "draft_citations": [asdict(c) for c in result.citations],
           "prompt_tokens": result.usage.prompt_tokens}
    row.update(judge(question, [ingested.document], row, level))
    row["seconds"] = round(time.perf_counter() - began, 2)
    return row


def judge(question: str, documents: Sequence[SourceDocument], row: dict[str, Any],
          level: str) -> dict[str, Any]:
    """The grounding check on a row's draft (``answer()``'s last step), as row fields."""
    from workers.qa.grounding import check
    from workers.qa.types import Citation

    cites = [Citation(**c) for c in row["draft_citations"]]
    began = time.perf_counter()
    verdict = check(question, row["draft"], cites, documents, level)
    gave_up, how = abstained(verdict)
    notes = verdict.notes
    return {
        "answer": verdict.text[:500],
        "citations": [(c.start, c.end) for c in verdict.citations],
        "abstained": gave_up,
        "abstained_by": how,
        "grounded": verdict.grounded,
        "grounding": {k: v for k, v in notes.items() if k not in ("draft", "claims")},
        "claims": notes.get("claims", []),
        "markup": markup_found(verdict.text),
        "check_seconds": round(time.perf_counter() - began, 3),
    }


def score_haystack(row: dict[str, Any], gold: tuple[int, int] | None) -> None:
    """Accuracy and evidence of a haystack row (answerable: right and not abstained;
    unanswerable: right when it abstains)."""
    if "answer" not in row:
        return
    if row["answerable"]:
        row["draft_correct"] = accepted(row["draft"], row["accept"])
        row["correct"] = not row["abstained"] and accepted(row["answer"], row["accept"])
        row["gold_located"] = gold is not None  # else: no evidence to cite
        row["gold"] = gold
        row["evidence"] = bool(gold) and evidence_covered(row["citations"], [gold])[0]
    else:
        row["correct"] = row["abstained"]


def _locate_fact(doc: Document, q: Any, text: str) -> tuple[int, int] | None:
    at = text.find(q.fact.sentence)
    return (at, at + len(q.fact.sentence)) if at >= 0 else None


def haystack_runs(args: argparse.Namespace, llm: Any, results: dict[str, Any], save) -> None:
    sources = load_sources(args.data)
    docs = plan_documents(args.lengths, args.registers, args.kinds, args.per_kind,
                          args.unanswerable, args.seed, sources, llm.count_tokens)
    for n, doc in enumerate(docs):
        ingested = IngestedDocument(f"hay-{n}", f"{doc.register} {doc.length}",
                                    doc.text.encode(), args.index)
        results["texts"][ingested.document.id] = ingested.document.text
        results["documents"].append({"register": doc.register, "length": doc.length,
                                     "tokens": doc.tokens, "chunks": len(ingested.chunks),
                                     "ingest_seconds": ingested.seconds})
        print(f"ingested {doc.register} {doc.length}: {doc.tokens} tokens, "
              f"{len(ingested.chunks)} chunks, {ingested.seconds} s", flush=True)
        for q in doc.questions:
            gold = _locate_fact(doc, q, ingested.document.text) if q.answerable else None
            for strategy in args.strategies:
                row = {"suite": "haystack", "id": q.id, "register": doc.register,
                       "length": doc.length, "tokens": doc.tokens, "kind": q.kind,
                       "answerable": q.answerable, "strategy": strategy,
                       "question": q.fact.question, "expected": q.fact.value,
                       "accept": q.fact.accept, "fact": q.fact.sentence}
                row["document"] = ingested.document.id
                row.update(_ask(q.fact.question, ingested, strategy, llm, args.grounding))
                score_haystack(row, gold)
                results["rows"].append(row)
                print(json.dumps({k: row.get(k) for k in (
                    "id", "kind", "strategy", "strategy_used", "correct", "evidence",
                    "abstained", "seconds", "answer")}, default=str)[:400], flush=True)
                save()


def loogle_runs(args: argparse.Namespace, llm: Any, results: dict[str, Any], save) -> None:
    from workers.qa.citations import locate

    path = args.data / "loogle" / "longdep_qa.jsonl"
    if args.loogle_documents < 1 or not path.exists():
        return
    docs, questions = load_loogle(path, args.loogle_documents, args.loogle_questions)
    ingested: dict[int, IngestedDocument] = {}
    for q in questions:
        if q.document not in ingested:
            title, text = docs[q.document]
            ingested[q.document] = IngestedDocument(f"loogle-{q.document}", title,
                                                    text.encode(), args.index)
        doc = ingested[q.document]
        gold = [span for e in q.evidence if (span := locate(e, doc.document.text))]
        for strategy in args.loogle_strategies:
            row = _loogle_row(q, doc, strategy, llm, gold, args.grounding)
            results["texts"][doc.document.id] = doc.document.text
            results["rows"].append(row)
            print(json.dumps({k: row.get(k) for k in (
                "title", "strategy", "score", "evidence_covered", "evidence_located",
                "abstained", "seconds")}, default=str)[:300], flush=True)
            save()


def _loogle_row(q: LoogleQuestion, doc: IngestedDocument, strategy: str, llm: Any,
                gold: list[tuple[int, int]], level: str) -> dict[str, Any]:
    tokens = llm.count_tokens(doc.document.text)
    row: dict[str, Any] = {"suite": "loogle", "title": q.title, "length": tokens,
                           "tokens": tokens, "answerable": True, "strategy": strategy,
                           "question": q.question, "expected": q.gold,
                           "evidence_pieces": len(q.evidence), "evidence_located": len(gold)}
    row["document"] = doc.document.id
    row.update(_ask(q.question, doc, strategy, llm, level))
    score_loogle(row, q.alternatives, gold)
    return row


def score_loogle(row: dict[str, Any], alternatives: Sequence[str],
                 gold: list[tuple[int, int]]) -> None:
    row["alternatives"], row["gold"] = list(alternatives), gold
    if "answer" in row:
        row["score"] = max(containment(row["answer"], alt) for alt in alternatives)
        row["draft_correct"] = max(containment(row["draft"], alt)
                                   for alt in alternatives) >= CONTAINMENT_CORRECT
        row["correct"] = not row["abstained"] and row["score"] >= CONTAINMENT_CORRECT
        row["evidence_covered"] = sum(evidence_covered(row["citations"], gold))
        row["evidence"] = row["evidence_covered"] > 0


def rescore(results: dict[str, Any], texts: dict[str, str], level: str) -> None:
    """Re-judge every saved draft with the grounding check as it is now (no model call):
    the same question, draft, citations and document text; the scores follow."""
    for row in results["rows"]:
        if "draft" not in row or row.get("document") not in texts:
            continue
        doc = SourceDocument(row["document"], "", texts[row["document"]])
        row.update(judge(row["question"], [doc], row, level))
        gold = [tuple(g) for g in row.get("gold") or []] if row["suite"] == "loogle" else (
            tuple(row["gold"]) if row.get("gold") else None)
        if row["suite"] == "loogle":
            score_loogle(row, row["alternatives"], gold)
        else:
            score_haystack(row, gold)


# -- report -----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("var/bench"))
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--lengths", nargs="*", type=int, default=[8000])
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    parser.add_argument("--registers", nargs="+", default=list(REGISTERS), choices=REGISTERS)
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--per-kind", type=int, default=1,
                        help="answerable questions per kind and length")
    parser.add_argument("--unanswerable", type=int, default=4,
                        help="unanswerable questions per length")
    parser.add_argument("--loogle-documents", type=int, default=1, help="0: no LooGLE")
    parser.add_argument("--loogle-questions", type=int, default=2,
                        help="questions per LooGLE document (0: all)")
    parser.add_argument("--loogle-strategies", nargs="+", choices=STRATEGIES,
                        help="default: --strategies")
    parser.add_argument("--index", choices=("ingest", "memory"), default="ingest",
                        help="ingest: the app's stored chunks and vectors, searched as the app "
                        "does; memory: the engine's InMemoryRetriever over the ingested text")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--append", action="store_true",
                        help="add to OUT/qa_quality/results.json (e.g. another length with "
                        "other options) instead of starting anew")
    parser.add_argument("--grounding", choices=("strict", "normal", "off"), default="normal",
                        help="strictness of the grounding check applied to each draft")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite results.md and the plot from results.json")
    parser.add_argument("--rescore", action="store_true",
                        help="re-judge the saved drafts with today's grounding check at "
                        "--grounding (no model call), then rewrite the report")
    args = parser.parse_args()
    out = args.out / "qa_quality"
    out.mkdir(parents=True, exist_ok=True)
    if args.report_only or args.rescore:
        results = json.loads((out / "results.json").read_text())
        if args.rescore:
            rescore(results, json.loads((out / TEXTS).read_text()), args.grounding)
            results["command"] += f"`, re-judged by `python -m bench qa_quality --rescore " \
                                  f"--grounding {args.grounding}"
            (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
        report(out, results)
        print((out / "results.md").read_text())
        return
    args.loogle_strategies = args.loogle_strategies or args.strategies
    from workers.llm import get_backend

    llm = get_backend()
    llm.count_tokens("warm up")
    command = "python -m bench qa_quality " + " ".join(sys.argv[1:])
    results: dict[str, Any] = {"command": command, "machine": describe_machine(llm.name),
                               "documents": [], "rows": []}
    texts: dict[str, str] = {}
    if args.append and (out / "results.json").exists():
        results = json.loads((out / "results.json").read_text())
        results["command"] += f"`, then `{command}"
        if (out / TEXTS).exists():
            texts = json.loads((out / TEXTS).read_text())
    results["texts"] = texts  # kept apart: the ingested text of every document, by id

    def save() -> None:
        (out / "results.json").write_text(json.dumps(
            {k: v for k, v in results.items() if k != "texts"}, indent=1, default=str))
        if len(texts) != saved_texts[0]:
            (out / TEXTS).write_text(json.dumps(texts))
            saved_texts[0] = len(texts)

    saved_texts = [-1]

    began = time.perf_counter()
    haystack_runs(args, llm, results, save)
    loogle_runs(args, llm, results, save)
    results["total_seconds"] = results.get("total_seconds", 0) + round(
        time.perf_counter() - began, 1)
    save()
    del results["texts"]
    report(out, results)
    print((out / "results.md").read_text())


if __name__ == "__main__":
    main()
