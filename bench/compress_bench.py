"""Compression benchmark: SCOPE (generative rewrite) against the deletion baseline.

    python -m bench.compress_bench --out DIR [--data /work/shared/data] [--quick]
        [--ratios 2 3 5 10] [--tokens 1500] [--loogle 2] [--haystacks 2] [--qa-ratio 5]

Inputs: excerpts of LooGLE documents (DATA/loogle, compressed without a question) and Paul
Graham essays with an inserted fact (DATA/pg_essays through the needle-haystack builder;
generated prose without the data; compressed with the question: question-aware).
Per input, ratio and method: achieved vs target ratio (goal: within ±10%), keyword retention
(goal ≥ 95%), input tokens per second. Needle QA: the same question answered with the
``full`` strategy on the uncompressed text, on SCOPE's and on the baseline's compression at
--qa-ratio (the haystacks fit the window uncompressed, so only the input differs).
Writes results.json (after every run), results.md and compress_bench.png into --out/compress.
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
from bench.plotting import pyplot  # noqa: E402
from workers.llm import get_backend  # noqa: E402
from workers.qa import SourceDocument, answer, build_haystack  # noqa: E402
from workers.scope import TOLERANCE, compress  # noqa: E402
from workers.scope.deletion import _score  # noqa: E402
from workers.scope.fitting import truncate  # noqa: E402
from workers.scope.keywords import candidates, kept  # noqa: E402

DEFAULT_DATA = Path("/work/shared/data")
METHODS = ("scope", "deletion")


def _inputs(args: argparse.Namespace, llm: Any) -> list[dict[str, Any]]:
    """[{name, text, question, answer (haystacks only), haystack}]"""
    out: list[dict[str, Any]] = []
    loogle = Path(args.data) / "loogle" / "longdep_qa.jsonl"
    if loogle.exists():
        lines = loogle.read_text().splitlines()[: args.loogle]
        for n, line in enumerate(lines):
            doc = json.loads(line)
            text = truncate(" ".join(doc["input"].split()), args.tokens, llm.count_tokens)
            out.append({"name": f"loogle-{n + 1}", "text": text, "question": None,
                        "title": doc.get("title", "")})
    essays = Path(args.data) / "pg_essays"
    for n in range(args.haystacks):
        hay = build_haystack(args.tokens, kind=("passkey", "needle")[n % 2], seed=n,
                             depth=0.3 + 0.4 * (n % 2),
                             essays_dir=essays if essays.exists() else None,
                             count_tokens=llm.count_tokens)
        out.append({"name": f"{hay.kind}-{n + 1}", "text": hay.text, "question": hay.question,
                    "haystack": hay, "title": hay.filler})
    return out


def _save(out: Path, results: dict[str, Any]) -> None:
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))


def compression_runs(args, llm, inputs, results, out) -> None:
    for item in inputs:
        for method in METHODS:
            for ratio in args.ratios:
                _score.cache_clear()  # the baseline's scores are cached per text: time them
                began = time.perf_counter()
                r = compress(item["text"], ratio=ratio, question=item["question"],
                             backend=llm, method=method, max_attempts=args.attempts)
                seconds = time.perf_counter() - began
                row = {
                    "input": item["name"], "method": method, "target": ratio,
                    "question_aware": bool(item["question"]),
                    "original_tokens": r.original_tokens,
                    "compressed_tokens": r.compressed_tokens,
                    "achieved": round(r.achieved_ratio, 3),
                    "error_pct": round(100 * (r.achieved_ratio - ratio) / ratio, 1),
                    "on_target": r.on_target,
                    "keyword_retention": round(r.keyword_retention, 3),
                    "keywords": f"{r.keywords_kept}/{r.keywords_total}",
                    "keywords_in_dropped": r.keywords_in_dropped,
                    # The same yardstick for both methods: every keyword of the whole text.
                    "text_keywords_kept": round(_text_keywords(item["text"], r.text), 3),
                    "seconds": round(seconds, 1),
                    "tokens_per_s": round(r.original_tokens / max(seconds, 1e-6), 1),
                    "outcomes": _outcomes(r),
                }
                if item.get("haystack") is not None:
                    row["needle_kept"] = item["haystack"].answer.lower() in r.text.lower()
                    if ratio == args.qa_ratio:
                        item.setdefault("compressed", {})[method] = r.text
                results["compression"].append(row)
                print(f"{item['name']:>10} {method:>8} {ratio:>4}×: achieved "
                      f"{row['achieved']:.2f}× ({row['error_pct']:+.1f}%), keywords "
                      f"{row['keyword_retention']:.0%}, {row['tokens_per_s']} tok/s", flush=True)
                _save(out, results)


def _text_keywords(original: str, compressed: str) -> float:
    found = [k for k, _ in candidates(original)]
    return len(kept(compressed, found)) / len(found) if found else 1.0


def _outcomes(r: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for c in r.chunks:
        counts[c.outcome] = counts.get(c.outcome, 0) + 1
    return counts


def qa_runs(args, llm, inputs, results, out) -> None:
    for item in inputs:
        hay = item.get("haystack")
        if hay is None:
            continue
        variants = {"uncompressed": item["text"], **{
            f"{m} {args.qa_ratio:g}×": t for m, t in item.get("compressed", {}).items()}}
        for name, text in variants.items():
            began = time.perf_counter()
            try:
                res = answer(hay.question, [SourceDocument("d", "Document", text)], "full",
                             backend=llm, answer_tokens=48)
                reply, error = res.text, ""
            except Exception as exc:  # a refusal counts as a wrong answer, with its reason
                reply, error = "", f"{type(exc).__name__}: {exc}"
            row = {"input": item["name"], "variant": name, "correct": hay.is_correct(reply),
                   "answer": reply[:200], "error": error, "expected": hay.answer,
                   "input_tokens": llm.count_tokens(text),
                   "seconds": round(time.perf_counter() - began, 1)}
            results["qa"].append(row)
            print(f"{item['name']:>10} QA {name:>16}: {'right' if row['correct'] else 'wrong'}"
                  f" ({row['input_tokens']} tokens)", flush=True)
            _save(out, results)


def _summary(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for method in METHODS:
        for ratio in sorted({r["target"] for r in results["compression"]}):
            runs = [r for r in results["compression"]
                    if r["method"] == method and r["target"] == ratio]
            if not runs:
                continue
            rows.append({
                "method": method, "target": ratio,
                "achieved": sum(r["achieved"] for r in runs) / len(runs),
                "max_abs_error_pct": max(abs(r["error_pct"]) for r in runs),
                "on_target": sum(r["on_target"] for r in runs), "runs": len(runs),
                "keyword_retention": sum(r["keyword_retention"] for r in runs) / len(runs),
                "text_keywords": sum(r.get("text_keywords_kept", 0) for r in runs) / len(runs),
                "tokens_per_s": sum(r["tokens_per_s"] for r in runs) / len(runs),
            })
    return rows


def _report(out: Path, results: dict[str, Any]) -> None:
    md = ["# Compression benchmark", "",
          f"Backend: {results['backend']}; inputs of ~{results['tokens']} tokens; "
          f"goal: within ±{TOLERANCE:.0%} of the target, keyword retention ≥ 95%. Keyword "
          "retention is the engine's own figure (SCOPE: the keywords of the chunks it kept, as "
          "many as each budget can carry; deletion: every keyword of the text); \"all text "
          "keywords kept\" is the same yardstick for both (every keyword of the original).",
          "",
          *machine_lines(results),
          "| method | target | mean achieved | max abs error | on target | keyword retention "
          "| all text keywords kept | input tok/s |", "|---|---|---|---|---|---|---|---|"]
    for s in _summary(results):
        md.append(f"| {s['method']} | {s['target']:g}× | {s['achieved']:.2f}× | "
                  f"{s['max_abs_error_pct']:.1f}% | {s['on_target']}/{s['runs']} | "
                  f"{s['keyword_retention']:.1%} | {s['text_keywords']:.1%} | "
                  f"{s['tokens_per_s']:.1f} |")
    md += ["", "## Every run", "", "| input | method | target | achieved | error | keywords "
           "| outcomes | s |", "|---|---|---|---|---|---|---|---|"]
    for r in results["compression"]:
        md.append(f"| {r['input']} | {r['method']} | {r['target']:g}× | {r['achieved']:.2f}× | "
                  f"{r['error_pct']:+.1f}% | {r['keywords']} | {r['outcomes']} | "
                  f"{r['seconds']} |")
    if results["qa"]:
        md += ["", "## Needle QA (strategy full, same question)", "",
               "| input | variant | input tokens | correct | answer |", "|---|---|---|---|---|"]
        for r in results["qa"]:
            answer_text = (r["answer"] or r["error"]).replace("|", "/").replace("\n", " ")
            md.append(f"| {r['input']} | {r['variant']} | {r['input_tokens']} | "
                      f"{'yes' if r['correct'] else 'no'} | {answer_text[:80]} |")
        by_variant: dict[str, list[bool]] = {}
        for r in results["qa"]:
            key = r["variant"].split(" ")[0]
            by_variant.setdefault(key, []).append(r["correct"])
        md += ["", "Accuracy: " + "; ".join(
            f"{k} {sum(v)}/{len(v)}" for k, v in by_variant.items())]
    (out / "results.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


def _plot(out: Path, results: dict[str, Any]) -> None:
    plt = pyplot()
    import matplotlib.ticker

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.3))
    ratios = sorted({r["target"] for r in results["compression"]})
    if ratios:
        xs = [min(ratios) * 0.9, max(ratios) * 1.1]
        left.plot(xs, xs, color="grey", lw=1, label="target")
        left.fill_between(xs, [x * (1 - TOLERANCE) for x in xs],
                          [x * (1 + TOLERANCE) for x in xs], color="grey", alpha=0.15,
                          label=f"±{TOLERANCE:.0%}")
    for method, marker in zip(METHODS, ("o", "x"), strict=True):
        runs = [r for r in results["compression"] if r["method"] == method]
        left.scatter([r["target"] for r in runs], [r["achieved"] for r in runs],
                     marker=marker, label=method)
    left.set(xscale="log", yscale="log", xlabel="target ratio", ylabel="achieved ratio",
             title="Achieved vs target")
    for axis in (left.xaxis, left.yaxis):
        axis.set_major_locator(matplotlib.ticker.FixedLocator(ratios))
        axis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g×"))
        axis.set_minor_locator(matplotlib.ticker.NullLocator())
    left.legend()
    summary = _summary(results)
    bars = [("scope", "keyword_retention", "SCOPE: its chunks' keywords"),
            ("scope", "text_keywords", "SCOPE: all keywords of the text"),
            ("deletion", "text_keywords", "deletion: all keywords of the text")]
    width = 0.27
    for k, (method, key, label) in enumerate(bars):
        rows = [s for s in summary if s["method"] == method]
        right.bar([i + k * width for i in range(len(rows))],
                  [100 * s.get(key, 0) for s in rows], width, label=label)
        right.set_xticks([i + width for i in range(len(rows))],
                         [f"{s['target']:g}×" for s in rows])
    right.axhline(95, color="grey", lw=1, ls="--")
    right.set(ylabel="keywords kept (%)", ylim=(0, 140), title="Keyword retention")
    right.set_yticks(range(0, 101, 20))
    right.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(out / "compress_bench.png", dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="var/bench")
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--quick", action="store_true",
                        help="one LooGLE excerpt and two haystacks of ~500 tokens, one try")
    parser.add_argument("--ratios", type=float, nargs="+", default=[2, 3, 5, 10])
    parser.add_argument("--tokens", type=int, default=1500)
    parser.add_argument("--loogle", type=int, default=2)
    parser.add_argument("--haystacks", type=int, default=2)
    parser.add_argument("--qa-ratio", type=float, default=5)
    parser.add_argument("--attempts", type=int, default=2)
    parser.add_argument("--replot", action="store_true",
                        help="only rewrite results.md and the plot from results.json")
    args = parser.parse_args()
    if args.quick:
        args.tokens, args.loogle, args.haystacks, args.attempts = 500, 1, 2, 1
    out = Path(args.out) / "compress"
    out.mkdir(parents=True, exist_ok=True)
    if args.replot:
        results = json.loads((out / "results.json").read_text())
        _report(out, results)
        _plot(out, results)
        return
    llm = get_backend()
    results: dict[str, Any] = {"backend": f"{llm.name} {llm.model}", "tokens": args.tokens,
                               "machine": describe_machine(llm.name),
                               "quick": args.quick, "compression": [], "qa": []}
    inputs = _inputs(args, llm)
    compression_runs(args, llm, inputs, results, out)
    qa_runs(args, llm, inputs, results, out)
    _save(out, results)
    _report(out, results)
    _plot(out, results)


if __name__ == "__main__":
    sys.exit(main())
