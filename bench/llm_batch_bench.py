"""Batched decoding in the embedded backend: N concurrent short answers, decoded together
(``LLM_BATCH_SIZE`` rows a step) against the same N one after another (batch size 1).

    python -m bench.llm_batch_bench --out DIR [--requests 8] [--tokens 32]

Tokens/s = completion tokens of all N answers / wall time; goal: batched >= 2.5x. Also
checks that every batched text equals its one-at-a-time text (greedy). The load average is
recorded: on a shared machine the neighbours move the figure. Writes DIR/llm_batch_bench.md,
.json and .png.

    python -m bench.llm_batch_bench --lone --out DIR [--tree NAME=PATH ...] [--repeats 3]

A lone long-context request (a ~2,900-token prompt, 40 tokens written, streamed): time to
the first token and tokens/s after it, in this tree (with the default batch size and with
``LLM_BATCH_SIZE=1``) and in each ``--tree`` (another checkout, e.g. ``git worktree add
/tmp/before <commit>``), one fresh process per measurement, the trees alternated
``--repeats`` times; medians and the ratio to the first ``--tree``. Writes
DIR/llm_lone_bench.md, .json and .png.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
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


LONG_TOKENS = 2900  # the lone request's prompt, about (chat template included)
LONE_WRITTEN = 40
ROOT = Path(__file__).resolve().parent.parent

# Runs in the measured tree (cwd first on sys.path): the backend's public API only, so an
# older checkout measures the same way. Prints one JSON line.
_LONE_CHILD = """
import json, sys, time
from workers.llm.embedded import EmbeddedBackend
prompt, tokens = json.loads(sys.argv[1])
backend = EmbeddedBackend()
backend.chat("Hi", max_tokens=2)  # load, outside the timing
start, first, written = time.perf_counter(), None, 0
for event in backend.stream(prompt, max_tokens=tokens):
    if event.delta and first is None:
        first = time.perf_counter()
    if event.usage is not None:
        written, prompt_tokens = event.usage.completion_tokens, event.usage.prompt_tokens
end = time.perf_counter()
print(json.dumps({"ttft_s": first - start, "decode_s": end - first, "written": written,
                  "prompt_tokens": prompt_tokens,
                  "tokens_per_s": (written - 1) / (end - first)}))
"""


def long_prompt(tokens: int = LONG_TOKENS) -> str:
    """A report of numbered sentences, about ``tokens`` long, and a request to summarise it."""
    from workers.llm.embedded import EmbeddedBackend

    counter = EmbeddedBackend()
    sentences, ask = [], "\n\nSummarise the report above in detail."
    while True:
        i = len(sentences)
        sentences.append(f"{i + 1}. The committee reviewed {TOPICS[i % len(TOPICS)]} and "
                         f"recorded {(i * 37) % 1000} items in ledger {i % 7}.")
        if counter.count_tokens([{"role": "user", "content": " ".join(sentences) + ask}]) >= tokens:
            return " ".join(sentences[:-1]) + ask


def _lone_once(tree: Path, env: dict[str, str], prompt: str) -> dict[str, Any]:
    env = {**os.environ, "LLM_MODELS_DIR": str((ROOT / "var" / "models").resolve()), **env}
    env.pop("PYTHONPATH", None)
    done = subprocess.run(
        [sys.executable, "-c", _LONE_CHILD, json.dumps([prompt, LONE_WRITTEN])],
        cwd=tree, env=env, capture_output=True, text=True, check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_lone(trees: list[tuple[str, Path]], repeats: int) -> dict[str, Any]:
    cases = [(name, path, {}) for name, path in trees] + [
        ("this tree", ROOT, {}), ("this tree, LLM_BATCH_SIZE=1", ROOT, {"LLM_BATCH_SIZE": "1"})]
    prompt = long_prompt()
    load_before = os.getloadavg()
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in cases}
    for _ in range(repeats):  # alternated: the neighbours' load falls on every case alike
        for name, path, env in cases:
            runs[name].append(_lone_once(path, env, prompt))
            print(name, runs[name][-1], flush=True)
    medians = {name: {key: round(statistics.median(r[key] for r in rs), 3)
                      for key in ("ttft_s", "tokens_per_s", "written", "prompt_tokens")}
               for name, rs in runs.items()}
    base = medians[cases[0][0]]["tokens_per_s"]
    for m in medians.values():
        m["ratio"] = round(m["tokens_per_s"] / base, 2)
    return {"machine": describe_machine("embedded"), "repeats": repeats,
            "trees": {name: str(path) for name, path, _ in cases},
            "runs": runs, "medians": medians,
            "load_average": {"before": [round(x, 2) for x in load_before],
                             "after": [round(x, 2) for x in os.getloadavg()]}}


def report_lone(results: dict[str, Any], out: Path) -> None:
    medians = results["medians"]
    first = next(iter(medians))
    lines = [
        "# Embedded backend: a lone long-context request", "", machine_line(results["machine"]),
        "", f"Prompt {next(iter(medians.values()))['prompt_tokens']:.0f} tokens, "
        f"{LONE_WRITTEN} tokens written, streamed; medians of {results['repeats']} runs "
        "(one fresh process each, cases alternated); tokens/s counted from the first token; "
        f"load average before/after {results['load_average']['before']} / "
        f"{results['load_average']['after']}.", "",
        f"| tree | time to first token (s) | tokens/s | tokens/s vs {first} |",
        "|---|---:|---:|---:|",
    ]
    for name, m in medians.items():
        per_run = ", ".join(f"{r['tokens_per_s']:.2f}" for r in results["runs"][name])
        lines.append(f"| {name} ({results['trees'][name]}) | {m['ttft_s']:.2f} | "
                     f"{m['tokens_per_s']:.2f} ({per_run}) | {m['ratio']:.2f}x |")
    (out / "llm_lone_bench.md").write_text("\n".join(lines) + "\n")
    (out / "llm_lone_bench.json").write_text(json.dumps(results, indent=2))
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    bar_panel(ax, list(medians), [m["tokens_per_s"] for m in medians.values()],
              "tokens/s after the first token, lone ~2.9k-token request",
              goal=medians[first]["tokens_per_s"])
    ax.tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    fig.savefig(out / "llm_lone_bench.png", dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="var/bench/llm_batch")
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--models-dir", default=None)
    parser.add_argument("--lone", action="store_true", help="the lone long-context case")
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.lone:
        trees = [(t.split("=", 1)[0], Path(t.split("=", 1)[1]).resolve()) for t in args.tree]
        report_lone(run_lone(trees, args.repeats), out)
        print((out / "llm_lone_bench.md").read_text())
        return
    results = run(args.requests, args.tokens, args.models_dir)
    report(results, out)
    print((out / "llm_batch_bench.md").read_text())


if __name__ == "__main__":
    main()
