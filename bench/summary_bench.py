"""Whole-document questions ("what is this about?") per reader: the chain against map–reduce.

    python -m bench.summary_bench --out DIR [--data /work/shared/data] [--documents 5]
        [--strategies coa mapreduce] [--max-tokens 0]

Each of LooGLE's long-dependency summarisation papers (DATA/loogle) is asked for a summary
by every strategy, with the app's default options. Measured per answer: wall seconds, ROUGE-1,
ROUGE-2 and ROUGE-Lsum F1 against LooGLE's reference summary (rouge-score, stemmed), the
citations (every one is checked to be an exact span of the document), how much of the
document they reach (the share of its tenths holding a cited span: a summary drawn from the
first pages only reaches one or two), words, whether it abstained, and prompt markup in the
text. Writes results.json (after every answer), results.md and summary_bench.png into --out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.machine import describe_machine, machine_lines  # noqa: E402
from bench.plotting import bar_panel, pyplot  # noqa: E402
from bench.qa_quality import markup_found  # noqa: E402
from workers.llm import get_backend  # noqa: E402
from workers.qa import SourceDocument, answer  # noqa: E402
from workers.qa.citations import is_valid  # noqa: E402
from workers.qa.questions import wants_whole_document  # noqa: E402

DEFAULT_DATA = Path("/work/shared/data")
STRATEGIES = ["coa", "mapreduce"]
# The ways people ask; the engine must read each as a whole-document question.
QUESTIONS = ["What is this paper about?", "Summarize this document.",
             "Give me an overview of the paper."]
PARTS = 10  # reach: the document's tenths holding a cited span


def load_papers(data: Path, limit: int) -> list[dict[str, str]]:
    path = data / "loogle" / "longdep_summarization.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [{"title": str(r.get("title", "")), "text": str(r["input"]),
             "reference": str(r["output"])}
            for r in rows[:limit]]


def reach(spans: list[tuple[int, int]], length: int, parts: int = PARTS) -> float:
    """Share of the document's ``parts`` equal slices that hold the start of a cited span."""
    if not spans or length <= 0:
        return 0.0
    return len({min(parts - 1, start * parts // length) for start, _ in spans}) / parts


def rouge(summary: str, reference: str) -> dict[str, float]:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeLsum"], use_stemmer=True)
    scores = scorer.score(reference, summary)
    return {name: round(score.fmeasure, 4) for name, score in scores.items()}


def run_one(paper: dict[str, str], question: str, strategy: str, llm: Any) -> dict[str, Any]:
    doc = SourceDocument(id=1, title=paper["title"], text=paper["text"])
    began = time.perf_counter()
    result = answer(question, [doc], strategy=strategy, backend=llm)
    seconds = time.perf_counter() - began
    spans = [(c.start, c.end) for c in result.citations]
    return {
        "title": paper["title"][:60], "question": question, "strategy": result.strategy,
        "seconds": round(seconds, 1), "tokens": llm.count_tokens(paper["text"]),
        "words": len(result.text.split()), "abstained": bool(result.abstained),
        "citations": len(spans),
        "citations_valid": all(is_valid(c, [doc]) for c in result.citations),
        "reach": reach(spans, len(paper["text"])),
        "markup": markup_found(result.text),
        **rouge(result.text, paper["reference"]),
        "answer": result.text,
    }


def _mean(rows: list[dict[str, Any]], key: str) -> float:
    values = [float(r[key]) for r in rows]
    return sum(values) / len(values) if values else 0.0


def write_markdown(out: Path, results: dict[str, Any]) -> None:
    rows = results["rows"]
    lines = ["# Whole-document questions: the chain against map–reduce", "",
             *machine_lines(results),
             "| strategy | paper | tokens | s | words | ROUGE-1 | ROUGE-2 | ROUGE-Lsum | "
             "citations (valid) | reach | abstained | markup |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['strategy']} | {r['title']} | {r['tokens']:,} | {r['seconds']} | {r['words']} "
            f"| {r['rouge1']:.3f} | {r['rouge2']:.3f} | {r['rougeLsum']:.3f} | {r['citations']} "
            f"({'yes' if r['citations_valid'] else 'NO'}) | {r['reach']:.1f} | "
            f"{'yes' if r['abstained'] else 'no'} | {', '.join(r['markup']) or '-'} |")
    lines += ["", "| strategy | answers | mean s | ROUGE-1 | ROUGE-2 | ROUGE-Lsum | reach | "
              "all citations valid | abstained | with markup |",
              "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    for strategy in results["strategies"]:
        mine = [r for r in rows if r["strategy"] == strategy]
        if mine:
            lines.append(
                f"| {strategy} | {len(mine)} | {_mean(mine, 'seconds'):.1f} | "
                f"{_mean(mine, 'rouge1'):.3f} | {_mean(mine, 'rouge2'):.3f} | "
                f"{_mean(mine, 'rougeLsum'):.3f} | {_mean(mine, 'reach'):.2f} | "
                f"{'yes' if all(r['citations_valid'] for r in mine) else 'NO'} | "
                f"{sum(r['abstained'] for r in mine)} | {sum(bool(r['markup']) for r in mine)} |")
    (out / "results.md").write_text("\n".join(lines) + "\n")


def plot(out: Path, results: dict[str, Any]) -> None:
    plt = pyplot()
    rows = results["rows"]
    strategies = [s for s in results["strategies"] if any(r["strategy"] == s for r in rows)]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for ax, key, title in ((axes[0], "seconds", "Mean wall time (s)"),
                           (axes[1], "rougeLsum", "ROUGE-Lsum F1 vs reference"),
                           (axes[2], "reach", "Reach: tenths of the paper cited")):
        values = [_mean([r for r in rows if r["strategy"] == s], key) for s in strategies]
        bar_panel(ax, strategies, values, title)
    fig.tight_layout()
    fig.savefig(out / "summary_bench.png", dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("var/bench/summary"))
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--documents", type=int, default=5)
    parser.add_argument("--strategies", nargs="+", default=STRATEGIES,
                        choices=["coa", "mapreduce", "rag", "xl3m", "auto"])
    parser.add_argument("--max-tokens", type=int, default=0,
                        help="cut each paper to about this many tokens (0: whole)")
    args = parser.parse_args(argv)
    if not (args.data / "loogle" / "longdep_summarization.jsonl").exists():
        print(f"no LooGLE summarisation data under {args.data}", file=sys.stderr)
        return 2
    assert all(wants_whole_document(q) for q in QUESTIONS)
    args.out.mkdir(parents=True, exist_ok=True)
    llm = get_backend()
    results: dict[str, Any] = {"machine": describe_machine(llm.name), "backend": llm.name,
                               "strategies": args.strategies, "rows": []}
    for i, paper in enumerate(load_papers(args.data, args.documents)):
        if args.max_tokens:
            paper["text"] = paper["text"][: args.max_tokens * 4]
        question = QUESTIONS[i % len(QUESTIONS)]
        for strategy in args.strategies:  # alternated per paper: the same load for both
            row = run_one(paper, question, strategy, llm)
            results["rows"].append(row)
            print(f"{strategy:9s} {row['title'][:40]:40s} {row['seconds']:7.1f} s "
                  f"R-Lsum {row['rougeLsum']:.3f} reach {row['reach']:.1f}", flush=True)
            (args.out / "results.json").write_text(json.dumps(results, indent=1))
    write_markdown(args.out, results)
    plot(args.out, results)
    print((args.out / "results.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
