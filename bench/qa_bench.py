"""Question-answering benchmark: passkey and needle QA per strategy and length, on this CPU.

    python -m bench.qa_bench --out DIR [--lengths 8000 32000] [--data /work/shared/data]
        [--kinds passkey passkey-para needle needle-para] [--strategies full rag xl3m coa mapreduce]
        [--trials 1] [--coa-kinds passkey passkey-para] [--loogle 2] [--seed 0]

For each length and kind, a haystack (Paul Graham essays from DATA/pg_essays, else generated
prose) with one needle at a random depth; each strategy answers; accuracy = the expected
answer is in the answer text; citations are checked (exact spans inside the document) and
whether one covers the needle. ``full`` is also swept across lengths to show where it breaks.
The XL3M scan time per segment is measured and 128k / 1M figures are *extrapolated* from it.
With DATA/loogle present, a few LooGLE short-dependency QA samples per strategy: every
citation must be valid; "evidence hit" = a citation overlaps LooGLE's evidence sentence.
Writes results.json (after every run), results.md and qa_bench.png into --out.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.machine import describe_machine, machine_lines  # noqa: E402
from bench.plotting import pyplot  # noqa: E402
from workers.llm import get_backend  # noqa: E402
from workers.llm.errors import ContextOverflow  # noqa: E402
from workers.qa import SourceDocument, answer, build_haystack, choose  # noqa: E402
from workers.qa.citations import is_valid, locate  # noqa: E402
from workers.qa.retrieval import InMemoryRetriever  # noqa: E402
from workers.qa.xl3m import DEFAULT_SEGMENT_TOKENS  # noqa: E402

DEFAULT_DATA = Path("/work/shared/data")
KINDS = {
    "passkey": ("passkey", False),
    "passkey-para": ("passkey", True),
    "needle": ("needle", False),
    "needle-para": ("needle", True),
}
STRATEGIES = ["full", "rag", "xl3m", "coa", "mapreduce"]
COA_OPTIONS = {"cu_tokens": 96}
MAPREDUCE_OPTIONS: dict[str, Any] = {}  # --mapreduce-chunk-tokens sets chunk_tokens
XL3M_OPTIONS: dict[str, Any] = {}  # --xl3m-full-scan sets fast_path False
USE_INDEX_FOR_XL3M = True  # --xl3m-no-index: the fast path pre-filters without the index


class _Index:
    """The app's index is built at ingest (pgvector + full text), not per question: the
    in-memory one (BM25 + dense, as the app) is built once per haystack, outside the timed
    question → answer, and shared by rag and the XL3M fast path (as chat passes it)."""

    def __init__(self, docs: list[SourceDocument]) -> None:
        self.docs, self.retriever, self.seconds = docs, None, None

    def get(self) -> InMemoryRetriever:
        if self.retriever is None:
            began = time.perf_counter()
            self.retriever = InMemoryRetriever(self.docs, dense=True)
            self.seconds = round(time.perf_counter() - began, 2)
        return self.retriever


def _run(
    question: str, docs: list[SourceDocument], strategy: str, llm: Any, index: _Index | None = None
) -> dict[str, Any]:
    options = {"coa": COA_OPTIONS, "xl3m": XL3M_OPTIONS,
               "mapreduce": MAPREDUCE_OPTIONS}.get(strategy, {})
    index = index or _Index(docs)
    retrieve = None
    if strategy == "rag" or (strategy == "xl3m" and USE_INDEX_FOR_XL3M):
        retrieve = index.get()
    index_seconds = index.seconds if retrieve is not None else None
    began = time.perf_counter()
    try:
        result = answer(
            question,
            docs,
            strategy,
            backend=llm,
            answer_tokens=64,
            options=options,
            retrieve=retrieve,
        )
    except ContextOverflow as exc:
        return {"refused": str(exc), "seconds": round(time.perf_counter() - began, 2)}
    seconds = time.perf_counter() - began
    return {
        "index_seconds": index_seconds,
        "answer": result.text[:300],
        "strategy_used": result.strategy,
        "seconds": round(seconds, 2),
        "citations": [(c.document_id, c.start, c.end) for c in result.citations],
        "citations_valid": all(is_valid(c, docs) for c in result.citations),
        "prompt_tokens": result.usage.prompt_tokens,
        "completion_tokens": result.usage.completion_tokens,
        "trace": {s.name: s.seconds for s in result.trace},
        "_result": result,
    }


def _xl3m_segment_stats(result: Any) -> dict[str, Any]:
    step = next(s for s in result.trace if s.name == "score_segments")
    n = len(step.notes["scores"])
    return {"segments": n, "scan_seconds": step.seconds, "per_segment": step.seconds / max(n, 1)}


def _save(out: Path, results: dict[str, Any]) -> None:
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))


def haystack_runs(args: argparse.Namespace, llm: Any, results: dict[str, Any], out: Path) -> None:
    essays = args.data / "pg_essays"
    rng = random.Random(args.seed)
    for length in args.lengths:
        for kind_name in args.kinds:
            kind, para = KINDS[kind_name]
            for trial in range(args.trials):
                h = build_haystack(
                    length,
                    kind=kind,
                    paraphrase=para,
                    seed=rng.randrange(1 << 30),
                    essays_dir=essays,
                    count_tokens=llm.count_tokens,
                )
                doc = SourceDocument("hay", "haystack", h.text)
                auto = choose(h.question, [doc], llm, total_tokens=h.tokens)
                index = _Index([doc])
                for strategy in args.strategies:
                    if strategy == "coa" and kind_name not in args.coa_kinds:
                        continue
                    row = _run(h.question, [doc], strategy, llm, index)
                    res = row.pop("_result", None)
                    row.update(
                        {
                            "length": length,
                            "tokens": h.tokens,
                            "kind": kind_name,
                            "strategy": strategy,
                            "trial": trial,
                            "depth": round(h.depth, 3),
                            "auto_choice": auto.strategy,
                            "expected": h.answer,
                        }
                    )
                    if res is not None:
                        row["correct"] = h.is_correct(res.text)
                        row["needle_cited"] = any(
                            c.start < h.needle_end and c.end > h.needle_start for c in res.citations
                        )
                        if strategy == "xl3m":
                            row.update(_xl3m_segment_stats(res))
                            step = next(s for s in res.trace if s.name == "score_segments")
                            first = step.notes["ranking"][0]
                            best = next(x for x in step.notes["scores"] if x["segment"] == first)
                            row["needle_segment_first"] = (
                                best["start"] <= h.needle_start < best["end"]
                            )
                            row["needle_segment_scored"] = any(
                                x["start"] <= h.needle_start < x["end"]
                                for x in step.notes["scores"]
                            )
                            pre = next((s for s in res.trace if s.name == "prefilter"), None)
                            row["prefilter"] = pre.notes.get("method") if pre else None
                    results["haystack"].append(row)
                    print(
                        json.dumps(
                            {
                                k: row.get(k)
                                for k in (
                                    "length",
                                    "kind",
                                    "trial",
                                    "depth",
                                    "correct",
                                    "seconds",
                                    "refused",
                                    "needle_segment_first",
                                    "needle_segment_scored",
                                    "index_seconds",
                                )
                            },
                            default=str,
                        )[:300],
                        flush=True,
                    )
                    _save(out, results)


def full_sweep(args: argparse.Namespace, llm: Any, results: dict[str, Any], out: Path) -> None:
    for length in args.full_sweep:
        h = build_haystack(
            length, seed=length, essays_dir=args.data / "pg_essays", count_tokens=llm.count_tokens
        )
        doc = SourceDocument("hay", "haystack", h.text)
        row = _run(h.question, [doc], "full", llm)
        res = row.pop("_result", None)
        row.update({"length": length, "tokens": h.tokens})
        if res is not None:
            row["correct"] = h.is_correct(res.text)
        results["full_sweep"].append(row)
        print("full", length, row.get("correct"), row.get("refused", "")[:80], flush=True)
        _save(out, results)


def _loogle_samples(
    folder: Path, n: int, questions: int
) -> list[tuple[SourceDocument, list[tuple[str, str, str]]]]:
    """The ``n`` shortest documents (cheaper on 2 cores), each with its first ``questions``
    questions (0: all) as (question, answer, evidence)."""
    path = folder / "shortdep_qa.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows.sort(key=lambda r: len(r["input"]))
    out = []
    for i, row in enumerate(rows[:n]):
        qa = row["qa_pairs"]
        qa = ast.literal_eval(qa) if isinstance(qa, str) else qa
        doc = SourceDocument(f"loogle-{i}", row["title"], row["input"])
        pairs = [(q["Q"], str(q["A"]), str(q.get("S", ""))) for q in qa]
        out.append((doc, pairs[:questions] if questions else pairs))
    return out


def loogle_runs(args: argparse.Namespace, llm: Any, results: dict[str, Any], out: Path) -> None:
    folder = args.data / "loogle"
    if not folder.exists() or args.loogle < 1:
        return
    samples = _loogle_samples(folder, args.loogle, args.loogle_questions)
    for i, (doc, pairs) in enumerate(samples):
        index = _Index([doc])
        for q, (question, gold, evidence) in enumerate(pairs):
            span = locate(evidence[:300], doc.text) if evidence else None
            for strategy in ["auto", *args.strategies]:
                if strategy == "coa" and i >= args.loogle_coa:
                    continue
                if q and strategy not in args.loogle_all_questions:
                    continue
                _loogle_row(llm, results, out, doc, i, q, question, gold, span, strategy, index)


def _loogle_row(
    llm: Any,
    results: dict[str, Any],
    out: Path,
    doc: SourceDocument,
    i: int,
    q: int,
    question: str,
    gold: str,
    span: tuple[int, int] | None,
    strategy: str,
    index: _Index,
) -> None:
    row = _run(question, [doc], strategy, llm, index)
    res = row.pop("_result", None)
    row.update(
        {
            "sample": i,
            "question_no": q,
            "title": doc.title,
            "question": question,
            "gold": gold,
            "tokens": llm.count_tokens(doc.text),
            "strategy": strategy,
        }
    )
    if res is not None and span is not None:
        row["evidence_hit"] = any(c.start < span[1] and c.end > span[0] for c in res.citations)
    results["loogle"].append(row)
    print(
        "loogle",
        i,
        q,
        strategy,
        row.get("citations_valid"),
        row.get("evidence_hit"),
        row.get("seconds"),
        flush=True,
    )
    _save(out, results)


def _table(results: dict[str, Any]) -> str:
    lines = [
        "| length | kind | strategy | correct | needle cited | seconds | note |",
        "|---:|---|---|---:|---:|---:|---|",
    ]
    groups: dict[tuple[int, str, str], list[dict[str, Any]]] = {}
    for row in results["haystack"]:
        groups.setdefault((row["length"], row["kind"], row.get("strategy", "")), []).append(row)
    for (length, kind, strategy), rows in sorted(groups.items()):
        ok = [r for r in rows if "refused" not in r]
        note = "refused (over the window)" if not ok else ""
        if strategy == "xl3m" and ok:
            first = sum(bool(r.get("needle_segment_first")) for r in ok)
            scored = sum(bool(r.get("needle_segment_scored")) for r in ok)
            paths = sorted({str(r.get("prefilter") or "full scan") for r in ok})
            note = (
                f"needle segment ranked 1st {first}/{len(ok)}, among the scored "
                f"{scored}/{len(ok)}; pre-filter: {', '.join(paths)}"
            )
        acc = f"{sum(bool(r.get('correct')) for r in ok)}/{len(ok)}" if ok else "—"
        cited = f"{sum(bool(r.get('needle_cited')) for r in ok)}/{len(ok)}" if ok else "—"
        secs = f"{sum(r['seconds'] for r in ok) / len(ok):.1f}" if ok else "—"
        lines.append(f"| {length} | {kind} | {strategy} | {acc} | {cited} | {secs} | {note} |")
    return "\n".join(lines)


def _report(out: Path, results: dict[str, Any]) -> None:
    md = [
        "# QA benchmark",
        "",
        f"Command: `{results['command']}`",
        "",
        *machine_lines(results),
        "## Haystack QA (accuracy = expected answer in the answer text)",
        "",
        _table(results),
        "",
    ]
    if results["full_sweep"]:
        md += ["## full across lengths", "", "| tokens | result | seconds |", "|---:|---|---:|"]
        for r in results["full_sweep"]:
            res = "refused" if "refused" in r else ("correct" if r.get("correct") else "wrong")
            md.append(f"| {r['tokens']} | {res} | {r['seconds']} |")
        md.append("")
    scan = [r for r in results["haystack"] if r.get("strategy") == "xl3m" and "per_segment" in r]
    if scan:
        per = sum(r["per_segment"] for r in scan) / len(scan)
        results["xl3m_per_segment_seconds"] = per
        md += [
            "## XL3M scan cost (measured per segment; longer lengths EXTRAPOLATED)",
            "",
            f"Measured: {per:.2f} s per {DEFAULT_SEGMENT_TOKENS}-token segment "
            f"(mean over {len(scan)} runs).",
            "",
            "| tokens | segments | full scan (extrapolated) |",
            "|---:|---:|---:|",
        ]
        for tokens in (128_000, 1_000_000):
            n = tokens // DEFAULT_SEGMENT_TOKENS
            md.append(f"| {tokens} | {n} | ~{n * per / 60:.0f} min |")
        md.append("")
    if results["loogle"]:
        md += [
            "## LooGLE (shortdep_qa, shortest documents)",
            "",
            "Per strategy: answered (not refused), every citation an exact span inside the",
            "cited document, a citation overlapping LooGLE's evidence, mean seconds and tokens.",
            "",
            "| strategy | questions | answered | citations valid | evidence hit | mean s "
            "| mean prompt tokens |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        by_strategy: dict[str, list[dict[str, Any]]] = {}
        for r in results["loogle"]:
            by_strategy.setdefault(r["strategy"], []).append(r)
        for strategy, rows in by_strategy.items():
            ok = [r for r in rows if "refused" not in r]
            valid = sum(bool(r.get("citations_valid")) and bool(r.get("citations")) for r in ok)
            hit = sum(bool(r.get("evidence_hit")) for r in ok)
            secs = sum(r["seconds"] for r in rows) / len(rows)
            tokens = sum(r.get("prompt_tokens") or 0 for r in ok) / max(1, len(ok))
            md.append(
                f"| {strategy} | {len(rows)} | {len(ok)} | {valid}/{len(ok)} | {hit}/{len(ok)} "
                f"| {secs:.1f} | {tokens:.0f} |"
            )
        md += [
            "",
            "| sample | question | tokens | strategy | used | citations valid | evidence hit "
            "| seconds |",
            "|---:|---:|---:|---|---|---|---|---:|",
        ]
        for r in results["loogle"]:
            used = r.get("strategy_used", "refused" if "refused" in r else "")
            md.append(
                f"| {r['sample']} | {r.get('question_no', 0)} | {r['tokens']} | {r['strategy']} "
                f"| {used} | {r.get('citations_valid', '—')} | {r.get('evidence_hit', '—')} | "
                f"{r['seconds']} |"
            )
        md.append("")
    (out / "results.md").write_text("\n".join(md))
    _save(out, results)
    _plot(out, results)


def _plot(out: Path, results: dict[str, Any]) -> None:
    plt = pyplot()

    rows = [r for r in results["haystack"] if "refused" not in r]
    if not rows:
        return
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    strategies = [s for s in STRATEGIES if any(r.get("strategy") == s for r in rows)]
    width = 0.8 / max(1, len(strategies))
    lengths = sorted({r["length"] for r in rows})
    panels = (
        ("accuracy, direct needles", lambda r: not r["kind"].endswith("-para"), "correct"),
        ("accuracy, paraphrased needles", lambda r: r["kind"].endswith("-para"), "correct"),
        ("seconds per question", lambda r: True, "seconds"),
    )
    for ax, (title, keep, field) in zip(axes, panels, strict=True):
        for j, strategy in enumerate(strategies):
            values = []
            for length in lengths:
                sel = [
                    r
                    for r in rows
                    if r["strategy"] == strategy and r["length"] == length and keep(r)
                ]
                vals = [float(r.get(field) or 0) for r in sel]
                values.append(sum(vals) / len(vals) if vals else 0.0)
            ax.bar([i + j * width for i in range(len(lengths))], values, width, label=strategy)
        if field == "correct":
            ax.set_ylim(0, 1.05)
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(lengths))])
        ax.set_xticklabels([f"{n // 1000}k tokens" for n in lengths])
        ax.set_title(title + " (full: refused at these lengths)", fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "qa_bench.png", dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--lengths", nargs="*", type=int, default=[8000, 32000])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    parser.add_argument("--strategies", nargs="+", default=STRATEGIES, choices=STRATEGIES)
    parser.add_argument("--coa-kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    parser.add_argument("--trials", type=int, default=1)
    parser.add_argument("--full-sweep", nargs="*", type=int, default=[4000, 7500, 8000])
    parser.add_argument("--loogle", type=int, default=2, help="LooGLE samples (0: none)")
    parser.add_argument("--loogle-coa", type=int, default=1, help="of which CoA runs on")
    parser.add_argument(
        "--loogle-questions", type=int, default=1, help="questions per LooGLE document (0: all)"
    )
    parser.add_argument(
        "--loogle-all-questions",
        nargs="*",
        default=["rag"],
        help="strategies that answer every question (the others: the first)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite results.md and the plot from OUT/results.json",
    )
    parser.add_argument(
        "--xl3m-full-scan",
        action="store_true",
        help="score every segment (no pre-filter) even past 48 segments",
    )
    parser.add_argument(
        "--xl3m-no-index",
        action="store_true",
        help="the XL3M fast path pre-filters with BM25 + the embedder over the "
        "segments instead of the search index (the engine without the app)",
    )
    parser.add_argument(
        "--mapreduce-chunk-tokens",
        type=int,
        help="tokens each map call reads (default: the engine's choice for the backend)",
    )
    args = parser.parse_args()
    if args.mapreduce_chunk_tokens:
        MAPREDUCE_OPTIONS["chunk_tokens"] = args.mapreduce_chunk_tokens
    if args.xl3m_full_scan:
        XL3M_OPTIONS["fast_path"] = False
    if args.xl3m_no_index:
        global USE_INDEX_FOR_XL3M
        USE_INDEX_FOR_XL3M = False
    args.out.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        _report(args.out, json.loads((args.out / "results.json").read_text()))
        return
    llm = get_backend()
    llm.count_tokens("warm up")
    results: dict[str, Any] = {
        "command": " ".join(sys.argv),
        "machine": describe_machine(llm.name),
        "haystack": [],
        "full_sweep": [],
        "loogle": [],
    }
    began = time.perf_counter()
    full_sweep(args, llm, results, args.out)
    haystack_runs(args, llm, results, args.out)
    loogle_runs(args, llm, results, args.out)
    results["total_seconds"] = round(time.perf_counter() - began, 1)
    _report(args.out, results)
    print((args.out / "results.md").read_text())


if __name__ == "__main__":
    main()
