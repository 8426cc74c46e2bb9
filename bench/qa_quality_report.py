"""The QA quality benchmark's report: figures per group of answers (summary), the tables of
results.md and the plot, from the rows ``bench.qa_quality`` writes to results.json."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from bench.machine import machine_lines
from bench.plotting import pyplot
from bench.qa_facts import KINDS, SHAPES
from workers.qa.options import STRATEGY_NAMES

# Full context cannot hold a long document: the benchmark asks every other strategy.
STRATEGIES = tuple(name for name in STRATEGY_NAMES if name != "full")
CONTAINMENT_CORRECT = 0.5  # LooGLE: at least half the gold answer's content words


def _frac(rows: list[dict], test: Callable[[dict], bool]) -> str:
    return f"{sum(bool(test(r)) for r in rows)}/{len(rows)}" if rows else "—"


def summary(rows: list[dict[str, Any]]) -> dict[str, str]:
    """The figures of one group of rows (refused / failed answers count as wrong)."""
    answered = [r for r in rows if "answer" in r]
    yes = [r for r in rows if r.get("answerable")]
    no = [r for r in rows if not r.get("answerable")]
    secs = [r["seconds"] for r in answered]
    return {
        "accuracy": _frac(yes, lambda r: r.get("correct")),
        "evidence": _frac(yes, lambda r: r.get("evidence")),
        "abstains": _frac(no, lambda r: r.get("abstained")),
        "false_abstain": _frac(yes, lambda r: r.get("abstained")),
        # the check's own mistakes: the model's draft was right, the check declined it
        "declined_right": _frac([r for r in yes if r.get("draft_correct")],
                                lambda r: r.get("abstained")),
        "markup": str(sum(bool(r.get("markup")) for r in rows)),
        "failed": str(len(rows) - len(answered)),
        "seconds": f"{sum(secs) / len(secs):.1f}" if secs else "—",
        "used": ", ".join(f"{k} ×{v}" for k, v in sorted(Counter(
            r.get("strategy_used") for r in answered).items())),
    }


def _group(rows: Iterable[dict], *keys: str) -> dict[tuple, list[dict]]:
    out: dict[tuple, list[dict]] = {}
    for r in rows:
        out.setdefault(tuple(r.get(k) for k in keys), []).append(r)
    return out


def _order(strategy: str) -> int:
    return STRATEGIES.index(strategy) if strategy in STRATEGIES else len(STRATEGIES)


def _by_strategy(rows: list[dict], key: str) -> Iterator[tuple[Any, str, dict[str, str]]]:
    """(value of ``key``, strategy, summary), sorted by the value then the strategy."""
    groups = _group(rows, key, "strategy")
    for (value, strategy), sel in sorted(groups.items(),
                                         key=lambda kv: (kv[0][0], _order(kv[0][1]))):
        yield value, strategy, summary(sel)


def tables(results: dict[str, Any]) -> list[str]:
    hay = [r for r in results["rows"] if r["suite"] == "haystack"]
    loogle = [r for r in results["rows"] if r["suite"] == "loogle"]
    md: list[str] = []
    if hay:
        md += ["## Paraphrased facts (haystacks)", "",
               "| length | strategy | accuracy | evidence cited | abstains (unanswerable) "
               "| false abstention | of right drafts | markup | failed | mean s | answered by |",
               "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for length, strategy, s in _by_strategy(hay, "length"):
            md.append(f"| {length} | {strategy} | {s['accuracy']} | {s['evidence']} | "
                      f"{s['abstains']} | {s['false_abstain']} | {s['declined_right']} | "
                      f"{s['markup']} | "
                      f"{s['failed']} | {s['seconds']} | {s['used']} |")
        strategies = sorted({r["strategy"] for r in hay}, key=_order)
        md += ["", "Answer right / evidence cited by kind (all lengths and registers):", "",
               "| kind | " + " | ".join(strategies) + " |",
               "|---|" + "---:|" * len(strategies)]
        for kind in [k for k in KINDS if any(r["kind"] == k for r in hay)]:
            cells = []
            for strategy in strategies:
                sel = [r for r in hay if r["kind"] == kind and r["strategy"] == strategy
                       and r["answerable"]]
                s = summary(sel)
                cells.append(f"{s['accuracy']} / {s['evidence']}")
            md.append(f"| {kind} ({SHAPES[kind]}) | " + " | ".join(cells) + " |")
        md += ["", "By register (all lengths):", "",
               "| register | strategy | accuracy | evidence cited | abstains | false abstention |",
               "|---|---|---:|---:|---:|---:|"]
        for register, strategy, s in _by_strategy(hay, "register"):
            md.append(f"| {register} | {strategy} | {s['accuracy']} | {s['evidence']} | "
                      f"{s['abstains']} | {s['false_abstain']} |")
        md.append("")
    if loogle:
        md += ["## LooGLE long-dependency QA", "",
               f"Accuracy: the answer contains ≥ {CONTAINMENT_CORRECT:.0%} of the gold "
               "answer's content words (or of the chosen option's). Evidence recall: gold "
               "evidence pieces (located in the text) covered by a citation.", "",
               "| strategy | questions | accuracy | mean containment | evidence recall "
               "| questions with evidence cited | abstained | markup | failed | mean s |",
               "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for (strategy,), rows in sorted(_group(loogle, "strategy").items(),
                                        key=lambda kv: _order(kv[0][0])):
            s = summary(rows)
            scores = [r["score"] for r in rows if "score" in r]
            covered = sum(r.get("evidence_covered", 0) for r in rows)
            located = sum(r["evidence_located"] for r in rows)
            mean = f"{sum(scores) / len(scores):.2f}" if scores else "—"
            md.append(f"| {strategy} | {len(rows)} | {s['accuracy']} | {mean} | "
                      f"{covered}/{located} | {s['evidence']} | {s['false_abstain']} | "
                      f"{s['markup']} | {s['failed']} | {s['seconds']} |")
        md.append("")
    return md


def report(out: Path, results: dict[str, Any]) -> None:
    docs = results.get("documents", [])
    md = ["# QA quality benchmark", "", f"Command: `{results['command']}`", "",
          *machine_lines(results), *tables(results)]
    if docs:
        md += ["Ingest (extract, chunk, embed) of the haystacks:", "",
               "| register | length | tokens | chunks | ingest s | s per 1M tokens |",
               "|---|---:|---:|---:|---:|---:|"]
        md += [f"| {d['register']} | {d['length']} | {d['tokens']} | {d['chunks']} | "
               f"{d['ingest_seconds']} | {d['ingest_seconds'] * 1e6 / d['tokens']:.0f} |"
               for d in docs]
        md.append("")
    (out / "results.md").write_text("\n".join(md))
    plot(out, results)


def plot(out: Path, results: dict[str, Any]) -> None:
    plt = pyplot()

    hay = [r for r in results["rows"] if r["suite"] == "haystack"]
    if not hay:
        return
    strategies = sorted({r["strategy"] for r in hay}, key=_order)
    lengths = sorted({r["length"] for r in hay})
    panels = (
        ("answer right (answerable)", lambda r: r["answerable"], "correct"),
        ("evidence cited (answerable)", lambda r: r["answerable"], "evidence"),
        ("abstains (unanswerable)", lambda r: not r["answerable"], "abstained"),
        ("false abstention (answerable)", lambda r: r["answerable"], "abstained"),
        ("seconds per question", lambda r: "seconds" in r, "seconds"),
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.8))
    width = 0.8 / max(1, len(strategies))
    for ax, (title, keep, field) in zip(axes, panels, strict=True):
        for j, strategy in enumerate(strategies):
            values = []
            for length in lengths:
                sel = [float(r.get(field) or 0) for r in hay
                       if r["strategy"] == strategy and r["length"] == length and keep(r)]
                values.append(sum(sel) / len(sel) if sel else 0.0)
            bars = ax.bar([i + j * width for i in range(len(lengths))], values, width,
                          label=strategy)
            ax.bar_label(bars, fmt="%.0f" if field == "seconds" else "%.2f", fontsize=6)
        if field != "seconds":
            ax.set_ylim(0, 1.05)
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(lengths))])
        ax.set_xticklabels([f"{n // 1000}k" for n in lengths])
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle("QA quality: paraphrased facts by document length (tokens)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "qa_quality.png", dpi=110)
    plt.close(fig)
