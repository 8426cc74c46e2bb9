"""How close the cost preview comes to the time a question really takes.

    python -m bench.estimate_bench --out var/bench [--tokens 8000 32000]
        [--strategies rag xl3m coa] [--warmup 6] [--data /work/shared/data]

The model's rates are first measured from a few warm-up answers of other sizes (recorded in
a rate book, as the workers record every call in the app), then for each length and
strategy the preview's estimate (``workers.qa.estimate``) is made before the question runs
and compared with its wall time: the ratio estimate / measured (goal: within 2× either
way). Documents: Paul Graham essays (DATA/pg_essays) with a fact needle, else generated
prose (``workers.qa.build_haystack``). Writes results.json, results.md and
estimate_bench.png into OUT/estimate.
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
from workers.llm import get_backend  # noqa: E402
from workers.llm.rates import CallSample, fit  # noqa: E402
from workers.qa import SourceDocument, answer, build_haystack  # noqa: E402
from workers.qa import run as qa_run  # noqa: E402
from workers.qa.estimate import preview  # noqa: E402
from workers.qa.retrieval import InMemoryRetriever  # noqa: E402

DEFAULT_DATA = Path("/work/shared/data")
QUESTION = "What is the pass key?"


class Book:
    """An in-memory rate book: the bench records the calls as the app's store does."""

    def __init__(self) -> None:
        self.samples: list[CallSample] = []

    def record(self, backend, usage, seconds: float, window: int = -1) -> None:  # noqa: ANN001
        self.samples.append(CallSample(usage.prompt_tokens, usage.completion_tokens, seconds,
                                       window))


def _ignore(delta: str) -> None:
    """Answers stream as chat streams them (the engine then measures reading and writing
    apart); the bench does not show the tokens."""


def _document(tokens: int, llm, data: Path, seed: int) -> SourceDocument:  # noqa: ANN001
    essays = data / "pg_essays"
    hay = build_haystack(tokens, seed=seed, count_tokens=llm.count_tokens,
                         essays_dir=essays if essays.exists() else None)
    return SourceDocument(f"hay-{tokens}", f"Essays ({tokens} tokens)", hay.text,
                          tokens=llm.count_tokens(hay.text))


def run(args: argparse.Namespace) -> dict[str, Any]:
    llm = get_backend()
    llm.count_tokens("warm up")
    book = Book()
    qa_run.record_call = book.record  # every model call of the runs below, as the app records
    data = Path(args.data)
    for i in range(args.warmup):  # rates from other sizes and shapes than those measured
        doc = _document(1500 + 700 * i, llm, data, seed=100 + i)
        answer(QUESTION if i % 2 else "Summarise the text.", [doc],
               "full" if i % 3 else "rag", backend=llm, grounding="off",
               retrieve=InMemoryRetriever([doc]), on_token=_ignore)
    rates = fit(book.samples)
    rows = []
    for tokens in args.tokens:
        doc = _document(tokens, llm, data, seed=tokens)
        retriever = InMemoryRetriever([doc])
        found = preview(QUESTION, [doc], llm, rates=rates)
        for strategy in args.strategies:
            estimate = found.estimate(strategy)
            if estimate is None:
                continue
            started = time.perf_counter()
            result = answer(QUESTION, [doc], strategy, backend=llm, grounding="off",
                            retrieve=retriever, on_token=_ignore)
            seconds = time.perf_counter() - started
            row = {"tokens": tokens, "strategy": strategy, "estimate": estimate.seconds,
                   "measured": round(seconds, 1),
                   "ratio": round(estimate.seconds / seconds, 2) if estimate.seconds else None,
                   "estimated_tokens": estimate.prompt_tokens + estimate.completion_tokens,
                   "used_tokens": result.usage.prompt_tokens + result.usage.completion_tokens,
                   "auto": found.choice}
            rows.append(row)
            print(json.dumps(row), flush=True)
    return {"command": "python -m bench.estimate_bench " + " ".join(sys.argv[1:]),
            "machine": describe_machine(llm.name), "model": f"{llm.name}:{llm.model}",
            "rates": rates.__dict__ if rates else None, "warmup_calls": len(book.samples),
            "rows": rows}


def report(out: Path, results: dict[str, Any]) -> None:
    rows = results["rows"]
    lines = ["# Cost preview vs measured time", "", f"Command: `{results['command']}`", "",
             *machine_lines(results),
             f"Rates fitted from {results['warmup_calls']} warm-up calls: {results['rates']}",
             "", "| tokens | strategy | estimate s | measured s | estimate / measured "
             "| tokens estimated / used | auto's pick |", "|---:|---|---:|---:|---:|---:|---|"]
    lines += [f"| {r['tokens']:,} | {r['strategy']} | {r['estimate']} | {r['measured']} | "
              f"{r['ratio']} | {r['estimated_tokens']:,} / {r['used_tokens']:,} | {r['auto']} |"
              for r in rows]
    within = [r for r in rows if r["ratio"] and 0.5 <= r["ratio"] <= 2]
    lines += ["", f"Within 2× either way: {len(within)}/{len(rows)}."]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    if rows:
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(8, 4))
        bar_panel(ax, [f"{r['strategy']} {r['tokens'] // 1000}k" for r in rows],
                  [r["ratio"] or 0 for r in rows], "Estimate / measured (goal 0.5–2)",
                  goal=1.0)
        ax.axhline(2.0, color="#c0392b", ls=":", lw=1)
        ax.axhline(0.5, color="#c0392b", ls=":", lw=1)
        fig.tight_layout()
        fig.savefig(out / "estimate_bench.png", dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="var/bench")
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--tokens", type=int, nargs="+", default=[8000, 32000])
    parser.add_argument("--strategies", nargs="+", default=["rag", "xl3m", "coa"])
    parser.add_argument("--warmup", type=int, default=6)
    args = parser.parse_args(argv)
    out = Path(args.out) / "estimate"
    out.mkdir(parents=True, exist_ok=True)
    results = run(args)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    report(out, results)
    print((out / "results.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
