"""The fault-injection benchmark's report (``bench.faults``): the summary of a run, results.md
with the row checks, and the plot of first-token latency and items finished over time."""

from __future__ import annotations

import json
from pathlib import Path

from bench.fault_checks import passed
from bench.machine import machine_lines
from bench.plotting import pyplot


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def summarise(results: dict) -> dict:
    idle, loaded = results.get("latency idle") or [], results.get("latency loaded") or []
    p95_idle, p95_loaded = percentile(idle, 95), percentile(loaded, 95)
    speed = results.get("speed-up") or {}
    one, two = speed.get("1"), speed.get("2")
    faults = results.get("faults") or {}
    return {
        "first token p95 idle s": p95_idle and round(p95_idle, 3),
        "first token p95 under batch s": p95_loaded and round(p95_loaded, 3),
        "latency ratio": round(p95_loaded / p95_idle, 2) if p95_idle and p95_loaded else None,
        "speed-up 2 vs 1": round(one["seconds"] / two["seconds"], 2) if one and two else None,
        "checks passed": sum(passed(c) for c in faults.get("checks", {}).values()),
        "checks": len(faults.get("checks", {})),
    }


def write_report(out: Path, results: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    summary = results["summary"]
    lines = ["# Fault-injection benchmark", "", *machine_lines(results),
             f"Command: `{results['command']}`", "",
             f"Items {results['config']['items']}, chats {results['config']['chats']}, "
             f"bound {results['config']['bound_s']} s, LLM {results['config']['llm']}, "
             f"grounding {results['config']['grounding']}.", "",
             *([f"**Stopped early**: {results['error']}", ""] if "error" in results else []),
             "| measure | value | goal |", "| --- | --- | --- |",
             f"| chat first token p95, idle | {summary['first token p95 idle s']} s | |",
             f"| chat first token p95, under the batch | "
             f"{summary['first token p95 under batch s']} s | |",
             f"| ratio | {summary['latency ratio']} | ≤ 2 |"]
    for n, run in sorted((results.get("speed-up") or {}).items()):
        lines.append(f"| batch with {n} worker process(es) | {run['seconds']} s "
                     f"({run['items_per_s']} items/s, {run['succeeded']} succeeded) | |")
    lines += [f"| speed-up 2 vs 1 | {summary['speed-up 2 vs 1']} | ≥ 1.8 |", ""]
    faults = results.get("faults")
    if faults:
        lines += [f"Fault run: {faults['seconds']} s, settled: {faults['settled']}; items "
                  f"{faults['items']}, chats {faults['chats']}.", "",
                  "| check | result | detail |", "| --- | --- | --- |"]
        for name, check in faults["checks"].items():
            detail = {k: v for k, v in check.items() if k != "ok"}
            lines.append(f"| {name} | {'pass' if passed(check) else 'FAIL'} | "
                         f"{json.dumps(detail, default=str)[:300]} |")
        lines += ["", "| fault | at (s) | lasted (s) | detail |", "| --- | --- | --- | --- |"]
        lines += [f"| {f['fault']} | {f['at']} | {f['seconds']} | {f['detail']} |"
                  for f in faults["faults"]]
        deaths = [f"{d['process']} at {d['at']} s" for d in faults["worker deaths"]]
        lines += ["", f"Worker deaths: {len(deaths)} ({', '.join(deaths[:12])}).", "",
                  "Item errors: " + json.dumps(faults["item errors"])[:800]]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    plot(out / "faults.png", results)


def plot(path: Path, results: dict) -> None:
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    faults = results.get("faults") or {}
    ends = faults.get("finished over time") or []
    left.plot(ends, range(1, len(ends) + 1), label="items ended")
    for fault in faults.get("faults", []):
        left.axvspan(fault["at"], fault["at"] + max(fault["seconds"], 0.5), alpha=0.2)
        left.text(fault["at"], 0, fault["fault"], rotation=90, fontsize=7, va="bottom")
    left.set(title="Fault run: batch items ended", xlabel="s after submitting", ylabel="items")
    series = {"idle": results.get("latency idle") or [],
              "under batch": results.get("latency loaded") or []}
    right.boxplot([v or [0] for v in series.values()], tick_labels=list(series))
    right.set(title="Chat first-token latency", ylabel="s")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
