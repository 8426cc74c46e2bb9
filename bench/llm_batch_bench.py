"""Batched decoding in the embedded backend: N concurrent short answers, decoded together
(``LLM_BATCH_SIZE`` rows a step) against the same N one after another (batch size 1).

    python -m bench.llm_batch_bench --out DIR [--requests 8] [--tokens 32]

Tokens/s = completion tokens of all N answers / wall time; goal: batched >= 2.5x. Also
checks that every batched text equals its one-at-a-time text (greedy). The load average is
recorded: on a shared machine the neighbours move the figure. Writes DIR/llm_batch_bench.md,
.json and .png.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from bench.machine import describe_machine, machine_line
from bench.plotting import bar_panel, pyplot

GOAL = 2.5
TOPICS = ["the sea", "a forest", "bread", "the moon", "rain", "a library", "trains", "snow",
          "a market", "winter", "bees", "a bridge", "tea", "a river", "clocks", "salt"]


def prompts(n: int) -> list[str]:
    return [f"Write two sentences about {TOPICS[i % len(TOPICS)]}." for i in range(n)]


def run(requests: int, tokens: int, models_dir: str | None) -> dict[str, Any]:
    from workers.llm.embedded import EmbeddedBackend

    asks = prompts(requests)
    one = EmbeddedBackend(models_dir, batch_size=1)
    many = EmbeddedBackend(models_dir, batch_size=requests)
    one.chat("Hi", max_tokens=2)  # load once, outside the timings
    load_before = os.getloadavg()

    started = time.perf_counter()
    singles = [one.chat(p, max_tokens=tokens) for p in asks]
    single_s = time.perf_counter() - started

    got: dict[int, Any] = {}
    barrier = threading.Barrier(requests)

    def call(i: int) -> None:
        barrier.wait()
        got[i] = many.chat(asks[i], max_tokens=tokens)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(requests)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batched_s = time.perf_counter() - started
    batched = [got[i] for i in range(requests)]

    single_tokens = sum(r.usage.completion_tokens for r in singles)
    batched_tokens = sum(r.usage.completion_tokens for r in batched)
    single_rate, batched_rate = single_tokens / single_s, batched_tokens / batched_s
    return {
        "machine": describe_machine("embedded"),
        "requests": requests,
        "max_tokens": tokens,
        "threads": one.threads,
        "one_at_a_time": {"seconds": round(single_s, 2), "tokens": single_tokens,
                          "tokens_per_s": round(single_rate, 2)},
        "batched": {"seconds": round(batched_s, 2), "tokens": batched_tokens,
                    "tokens_per_s": round(batched_rate, 2),
                    "peak_batch": many._decoder().peak_batch},
        "ratio": round(batched_rate / single_rate, 2),
        "goal": GOAL,
        "same_texts": [r.text for r in batched] == [r.text for r in singles],
        "load_average": {"before": [round(x, 2) for x in load_before],
                         "after": [round(x, 2) for x in os.getloadavg()]},
    }


def report(results: dict[str, Any], out: Path) -> None:
    one, bat = results["one_at_a_time"], results["batched"]
    lines = [
        "# Embedded backend: batched vs one-at-a-time decoding", "",
        machine_line(results["machine"]), "",
        f"{results['requests']} short answers (max {results['max_tokens']} tokens), "
        f"{results['threads']} torch thread(s); load average before/after "
        f"{results['load_average']['before']} / {results['load_average']['after']} "
        "(a shared machine: the neighbours move these figures).", "",
        "| mode | seconds | tokens | tokens/s |", "|---|---:|---:|---:|",
        f"| one at a time | {one['seconds']} | {one['tokens']} | {one['tokens_per_s']} |",
        f"| batched (peak {bat['peak_batch']} rows) | {bat['seconds']} | {bat['tokens']} | "
        f"{bat['tokens_per_s']} |", "",
        f"Ratio {results['ratio']}x (goal {results['goal']}x); batched texts equal the "
        f"one-at-a-time texts: {results['same_texts']}.",
    ]
    (out / "llm_batch_bench.md").write_text("\n".join(lines) + "\n")
    (out / "llm_batch_bench.json").write_text(json.dumps(results, indent=2))
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    bar_panel(ax, ["one at a time", "batched"], [one["tokens_per_s"], bat["tokens_per_s"]],
              f"tokens/s, {results['requests']} concurrent answers",
              goal=one["tokens_per_s"] * GOAL)
    fig.tight_layout()
    fig.savefig(out / "llm_batch_bench.png", dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="var/bench/llm_batch")
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--models-dir", default=None)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = run(args.requests, args.tokens, args.models_dir)
    report(results, out)
    print((out / "llm_batch_bench.md").read_text())


if __name__ == "__main__":
    main()
