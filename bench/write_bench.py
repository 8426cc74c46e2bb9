"""Long-writing benchmark: AgentWrite (plan → sections → length control) with the embedded
model on LongWrite-Ruler and HelloBench prompts.

    python -m bench.write_bench --out DIR [--data /work/shared/data] [--quick]
        [--max-words 10000] [--longwrite 8 | --one-per-length] [--hellobench 2]
        [--lang en|zh|all]

Per prompt: the required length (LongWrite-Ruler's ``length``; HelloBench's "no shorter
than N words" from its file), the words written, the LongBench-Write length score, the plan
source (model / repaired / fallback), seconds for planning and for writing, words per minute
and the share of distinct word 4-grams (1.0: nothing repeats). In the same run: the raw
decode speed (one free generation, as words/minute), before and after each prompt, so that
writing speed is compared on the same machine under the same load (a prompt against the
mean of the two measurements around it), and the time to resume after a kill (a document
is killed right after its first section is saved; the restart is timed until the next
section starts).
``--quick``: one LongWrite-Ruler and one HelloBench prompt, targets capped at 1,000 words, a
small resume document (~10 minutes on 2 CPU cores). Writes results.json (after every
prompt), results.md and write_bench.png into DIR/write.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.machine import describe_machine, machine_lines  # noqa: E402
from bench.plotting import bar_panel, pyplot  # noqa: E402
from workers.llm import get_backend  # noqa: E402
from workers.writing import (  # noqa: E402
    Plan,
    PlanSection,
    count_words,
    distinct_ngram_share,
    length_score,
    make_plan,
    requested_words,
    write_document,
)

DEFAULT_DATA = Path("/work/shared/data")
FALLBACK_PROMPTS = [  # when the data folder is absent
    {"prompt": "Write a 1000-word article on the history of the Roman Empire", "length": 1000},
    {"prompt": "Write a 2000-word China travel guide", "length": 2000},
]
_CJK = re.compile(r"[\u4e00-\u9fff]")


def longwrite_prompts(data: Path, lang: str) -> list[dict[str, Any]]:
    path = data / "longwrite" / "longwrite_ruler.jsonl"
    if not path.exists():
        return [{**p, "set": "builtin"} for p in FALLBACK_PROMPTS]
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    out = []
    for row in rows:
        is_zh = bool(_CJK.search(row["prompt"]))
        if lang == "all" or (lang == "zh") == is_zh:
            out.append({"prompt": row["prompt"], "length": int(row["length"]),
                        "set": "longwrite", "lang": "zh" if is_zh else "en"})
    return sorted(out, key=lambda r: r["length"])


def hellobench_prompts(data: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted((data / "hellobench").glob("heuristic_text_generation_*k.jsonl"),
                       key=lambda p: int(re.search(r"_(\d+)k", p.name).group(1))):
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            length = requested_words(row["instruction"]) or \
                int(re.search(r"_(\d+)k", path.name).group(1)) * 1000
            out.append({"prompt": row["instruction"], "length": length, "set": "hellobench",
                        "lang": "en", "id": row.get("id", "")})
    return out


def raw_decode(llm, tokens: int = 200) -> dict[str, float]:
    """Free generation speed on this machine now: the ceiling for writing speed. Measured
    before and after every prompt (the machine's load changes during a run); each prompt
    is compared with the mean of the two measurements around it."""
    started = time.perf_counter()
    result = llm.chat("Write a long story about a lighthouse keeper and the sea.",
                      max_tokens=tokens, temperature=0.7, top_p=0.9, seed=1)
    seconds = time.perf_counter() - started
    words = count_words(result.text)
    return {"tokens_per_s": round(result.usage.completion_tokens / seconds, 2),
            "words_per_min": round(words / seconds * 60, 1),
            "tokens_per_word": round(result.usage.completion_tokens / max(words, 1), 3),
            "seconds": round(seconds, 2)}


def against_raw(llm, row: dict[str, Any], decodes: list[dict[str, float]], speed: str) -> None:
    """Measure the raw decode again after ``row``'s prompt and set its ``raw_words_per_min``
    (the mean of the measurements before and after it) and ``vs_raw`` (``row[speed]`` over
    that)."""
    decodes.append(raw_decode(llm))
    print(f"raw decode: {decodes[-1]}", flush=True)
    around = [r["words_per_min"] for r in decodes[-2:]]
    row["raw_words_per_min"] = round(sum(around) / len(around), 1)
    row["vs_raw"] = round(row[speed] / row["raw_words_per_min"], 2)


def run_prompt(llm, item: dict[str, Any], max_words: int) -> dict[str, Any]:
    target = min(item["length"], max_words)
    began = time.perf_counter()
    plan = make_plan(llm, item["prompt"], target)
    plan_seconds = time.perf_counter() - began
    saved: dict[int, Any] = {}
    result = write_document(item["prompt"], plan, backend=llm, done_sections={},
                            save_section=lambda i, r: saved.__setitem__(i, r))
    write_seconds = time.perf_counter() - began - plan_seconds
    words = count_words(result.text)
    generated = sum(r.usage.completion_tokens for r in result.sections)
    return {
        "set": item["set"], "lang": item.get("lang", "en"), "prompt": item["prompt"][:120],
        "required": item["length"], "target": target, "words": words,
        "length_score": round(length_score(target, words), 1),
        "plan_source": plan.source, "sections": len(plan.sections),
        "empty_sections": sum(1 for r in result.sections if r.status == "empty"),
        "plan_seconds": round(plan_seconds, 1), "write_seconds": round(write_seconds, 1),
        "words_per_min_write": round(words / write_seconds * 60, 1) if write_seconds else 0,
        "words_per_min_total": round(words / (plan_seconds + write_seconds) * 60, 1),
        "tokens_generated": generated,
        "tokens_kept_share": round(llm.count_tokens(result.text) / generated, 3)
        if generated else 0,
        "rounds": sum(r.rounds for r in result.sections),
        "dropped_repeats": sum(r.dropped_sentences for r in result.sections),
        "distinct_4gram": round(distinct_ngram_share(result.text), 3),
        "sample": result.text[:400],
    }


class Killed(Exception):
    pass


def resume_time(llm, section_words: int = 150) -> dict[str, Any]:
    """Kill a document right after its first section is saved; restart and time until the
    next section starts (the work a restart has to redo before writing again)."""
    instruction = "Write a short article about bees."
    plan = Plan([PlanSection(i, p, section_words) for i, p in enumerate(
        ["Life in the hive", "How bees make honey", "Why bees matter"], start=1)], "fallback")
    saved: dict[int, str] = {}

    def save_then_die(index, result):
        saved[index] = result.text
        raise Killed

    with contextlib.suppress(Killed):
        write_document(instruction, plan, backend=llm, done_sections={},
                       save_section=save_then_die)
    restarted = time.perf_counter()
    first_start: list[float] = []
    written: list[int] = []

    def started(index):
        if not first_start:
            first_start.append(time.perf_counter() - restarted)
        raise Killed  # stop here: the measurement is until the next section starts

    with contextlib.suppress(Killed):
        write_document(instruction, plan, backend=llm, done_sections=dict(saved),
                       save_section=lambda i, r: written.append(i), on_section_start=started)
    return {"sections_done_before_kill": sorted(saved),
            "seconds_to_next_section": round(first_start[0], 4) if first_start else None,
            "sections_rewritten": written}


def write_markdown(out: Path, results: dict[str, Any]) -> None:
    rows = results["prompts"]
    raw = results.get("raw_decode", {})
    measured = ", ".join(str(d["words_per_min"]) for d in results.get("raw_decodes", []))
    lines = ["# Long-writing benchmark (AgentWrite, embedded model)", "",
             f"Model: {results['model']}. Raw decode in this run: {raw.get('tokens_per_s')} tok/s "
             f"= {raw.get('words_per_min')} words/min (mean of {measured} words/min, measured "
             "before and after each prompt; \"vs raw\" compares a prompt with the two "
             "measurements around it).", "",
             *machine_lines(results),
             "| set | required | target | words | length score | plan | plan s | write s | "
             "words/min (write) | raw words/min | vs raw | tokens kept | repeats dropped | "
             "distinct 4-grams | prompt |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['set']} | {r['required']:,} | {r['target']:,} | {r['words']:,} | "
                     f"{r['length_score']} | {r['plan_source']} | {r['plan_seconds']} | "
                     f"{r['write_seconds']} | {r['words_per_min_write']} | "
                     f"{r['raw_words_per_min']} | {r['vs_raw']:.2f} | {r['tokens_kept_share']} | "
                     f"{r['dropped_repeats']} | {r['distinct_4gram']} | {r['prompt'][:60]} |")
    if rows:
        scores = [r["length_score"] for r in rows]
        lines += ["", f"Mean length score: {sum(scores) / len(scores):.1f} over {len(rows)} "
                      f"prompt(s)."]
    if "resume" in results:
        res = results["resume"]
        lines += ["", f"Resume after a kill: sections done before the kill "
                      f"{res['sections_done_before_kill']}; next section started "
                      f"{res['seconds_to_next_section']} s after the restart; sections "
                      f"rewritten: {res['sections_rewritten'] or 'none'}."]
    (out / "results.md").write_text("\n".join(lines) + "\n")


def plot(out: Path, results: dict[str, Any]) -> None:
    rows = results["prompts"]
    if not rows:
        return
    plt = pyplot()
    raw = results.get("raw_decode", {}).get("words_per_min") or 0
    labels = [f"{r['set'][:5]} {r['target']}" for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    bar_panel(axes[0], labels, [r["length_score"] for r in rows], "Length score (goal ≥ 90)",
              color="#2f6fb0", goal=90, ylim=(0, 100))
    axes[1].bar(labels, [r["words_per_min_write"] for r in rows], color="#4f86c6",
                label="writing")
    if raw:
        axes[1].axhline(raw, color="#c0392b", ls="--", lw=1, label="raw decode")
        axes[1].axhline(0.9 * raw, color="#c0392b", ls=":", lw=1, label="0.9 × raw")
    axes[1].set_title("Words per minute")
    axes[1].legend(fontsize=8)
    bar_panel(axes[2], labels, [r["distinct_4gram"] for r in rows], "Distinct 4-gram share",
              color="#27ae60", ylim=(0, 1))
    for ax in axes:
        ax.tick_params(axis="x", rotation=30, labelsize=8)
    fig.tight_layout()
    fig.savefig(out / "write_bench.png", dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="var/bench")
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--max-words", type=int, default=10_000)
    parser.add_argument("--longwrite", type=int, default=8, help="LongWrite-Ruler prompts")
    parser.add_argument("--hellobench", type=int, default=2, help="HelloBench prompts")
    parser.add_argument("--lang", choices=["en", "zh", "all"], default="en")
    parser.add_argument("--no-resume", action="store_true")
    parser.add_argument("--one-per-length", action="store_true",
                        help="one LongWrite-Ruler prompt per required length (1k, 2k, 5k, 10k…)")
    args = parser.parse_args(argv)
    out = Path(args.out) / "write"
    out.mkdir(parents=True, exist_ok=True)
    data = Path(args.data)
    max_words = min(args.max_words, 1000) if args.quick else args.max_words
    longwrite = [p for p in longwrite_prompts(data, args.lang) if p["length"] <= max(max_words,
                                                                                     1000)]
    hello = hellobench_prompts(data) if (data / "hellobench").exists() else []
    if args.quick:
        items = longwrite[:1] + hello[:1]
    elif args.one_per_length:  # the first prompt of each required length, up to --max-words
        firsts = {p["length"]: p for p in reversed(longwrite)}
        items = [firsts[n] for n in sorted(firsts)] + hello[:args.hellobench]
    else:
        items = longwrite[:args.longwrite] + hello[:args.hellobench]

    llm = get_backend()
    llm.count_tokens("warm up")
    results: dict[str, Any] = {"model": f"{llm.name}:{llm.model}", "max_words": max_words,
                               "machine": describe_machine(llm.name), "prompts": []}
    results["raw_decodes"] = [raw_decode(llm)]
    print(f"raw decode: {results['raw_decodes'][-1]}", flush=True)
    for item in items:
        row = run_prompt(llm, item, max_words)
        against_raw(llm, row, results["raw_decodes"], "words_per_min_write")
        results["prompts"].append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "sample"}), flush=True)
        (out / "results.json").write_text(json.dumps(results, indent=2))
    decodes = results["raw_decodes"]
    results["raw_decode"] = {key: round(sum(d[key] for d in decodes) / len(decodes), 3)
                             for key in decodes[0]}  # the mean of the run
    if not args.no_resume:
        results["resume"] = resume_time(llm)
        print(f"resume: {results['resume']}", flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    write_markdown(out, results)
    plot(out, results)
    print((out / "results.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
