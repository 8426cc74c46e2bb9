"""Writing quality benchmark: does the long text do what the instruction asked, not only hit
its length? AgentWrite with the embedded model on the project's own generated instructions
(parts to cover, schedules over weeks or chapters, items due in given units, format
markers), plus LongWrite-Ruler and HelloBench prompts when /work/shared/data is there.

    python -m bench writing_quality [--lengths 1000 5000] [--kinds guide diary report story]
        [--longwrite 1] [--hellobench 1] [--quick] [--report-only]

Per instruction, measured against the generator's own ground truth (not the engine's
reading of the instruction):
- plan coverage: share of the instruction's parts and due items that the plan gives a
  section (a section whose point names the part; for an item, every unit it is due in);
- constraint satisfaction: share of checkable constraints met in the right section (an
  ending in every section, each item in each section it is due in, a table in the section
  about its subject, the spelling variety, the separator between every two sections);
- cross-section repetition: share of a section's content 4-grams found in the other
  sections, beside two references: the same measure between two unrelated texts of this
  run, and within human-written text (Paul Graham essays cut into as many sections of the
  same length, when DATA/pg_essays is there) — text on one subject shares its names and
  terms, so the human level is the one a coherent text can be held to;
- restated sentences: share of sentences saying again what another section says (most of
  their content 4-grams in one sentence there, or a paraphrase by all-MiniLM-L6-v2 cosine
  ≥ 0.85), beside the same between unrelated texts and within the human text;
- distinct 4-grams, length score (LongBench-Write S_l), and words/minute of the whole job
  (plan, write, checks and fixes) against the raw decode measured before and after it.

Writes results.json (after every instruction), results.md and writing_quality.png into
OUT/writing_quality. ``--quick``: two instructions at 1,000 words.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.machine import describe_machine, machine_lines  # noqa: E402
from bench.plotting import bar_panel, pyplot  # noqa: E402
from bench.write_bench import (  # noqa: E402
    DEFAULT_DATA,
    against_raw,
    hellobench_prompts,
    longwrite_prompts,
    raw_decode,
)
from workers.writing import (  # noqa: E402
    count_words,
    cross_section_repetition,
    distinct_ngram_share,
    length_score,
    make_plan,
    write_document,
)
from workers.writing.checks import check_one  # noqa: E402
from workers.writing.instruction import Constraint
from workers.writing.overlap import restated_share, unrelated_repetition  # noqa: E402
from workers.writing.vocabulary import keywords, mentions  # noqa: E402
from workers.writing.writer import sentence_vectors  # noqa: E402

GUIDES = [
    ("new beekeepers", ["equipment", "the first inspection", "swarm control",
                        "what to do in winter"]),
    ("beginner cyclists", ["choosing a bike", "basic maintenance", "riding in traffic",
                           "cycling in the rain"]),
    ("first-time gardeners", ["soil preparation", "choosing seeds", "watering",
                              "dealing with pests"]),
]
DIARIES = [
    ("a year of learning the violin", "the first concert", "a lesson with a new teacher"),
    ("a sailing trip along the coast", "the storm", "a repair stop in a harbour"),
    ("a season on a mountain farm", "the sheep shearing", "a market day in the village"),
]
REPORTS = [
    ("solar panels for a school", ["installation", "costs", "maintenance"]),
    ("a community bicycle workshop", ["premises", "costs", "volunteers"]),
]
STORIES = [
    ("a lighthouse keeper who finds a message in a bottle", "a stranger named Mara"),
    ("two sisters who restore an old cinema", "the landlord Mr Pike"),
]
KINDS = ("guide", "diary", "report", "story")


def instruction(kind: str, words: int, seed: int) -> dict[str, Any]:
    """A generated instruction with its ground truth: ``parts`` to cover, ``items`` due in
    given units (1-based), the checkable ``constraints``."""
    rng = random.Random(f"{kind}-{words}-{seed}")
    if kind == "guide":
        audience, parts = rng.choice(GUIDES)
        text = (f"Write a practical guide for {audience}: {', '.join(parts[:-1])} and "
                f"{parts[-1]}. End each section with a checklist.")
        return {"kind": kind, "text": text, "parts": parts, "items": [], "units": 0,
                "ending": "checklist"}
    if kind == "diary":
        topic, event, recurring = rng.choice(DIARIES)
        n = max(4, words // 250)
        at = rng.randint(2, n - 1)
        step = max(2, n // 4)
        start = rng.randint(1, step)
        text = (f"Write a diary of {topic} with one entry per week for {n} weeks. "
                f"{event.capitalize()} in weeks {at}–{at + 1}, {recurring} every {step} weeks "
                f"from week {start}. "
                "Separate entries with ###. Write in British English.")
        items = [(event, [at, at + 1]), (recurring, list(range(start, n + 1, step)))]
        return {"kind": kind, "text": text, "parts": [], "items": items, "units": n,
                "unit": "week", "separator": "###", "variety": "en-GB"}
    if kind == "report":
        topic, parts = rng.choice(REPORTS)
        text = (f"Write a report on {topic} covering {', '.join(parts[:-1])} and {parts[-1]}. "
                "Include a table of costs. End each section with a question for the reader.")
        return {"kind": kind, "text": text, "parts": parts, "items": [], "units": 0,
                "ending": "question", "table": "costs"}
    premise, person = rng.choice(STORIES)
    n = max(3, words // 400)
    at = rng.randint(2, n)
    text = (f"Write a story in {n} chapters about {premise}. {person[:1].upper() + person[1:]} "
            f"appears in chapter {at}. "
            "End each chapter with a question.")
    return {"kind": kind, "text": text, "parts": [], "items": [(person, [at])], "units": n,
            "unit": "chapter", "ending": "question"}


def _unit_of(point: str, unit: str) -> int | None:
    import re

    found = re.match(rf"\s*{unit}\s+(\d+)", point, re.IGNORECASE)
    return int(found.group(1)) if found else None


def plan_coverage(truth: dict[str, Any], plan) -> tuple[float, list[str]]:
    """Share of ground-truth parts and due items the plan gives a section to."""
    missed, total = [], 0
    for part in truth["parts"]:
        total += 1
        if not any(mentions(s.point, keywords(part)) for s in plan.sections):
            missed.append(part)
    for item, units in truth["items"]:
        total += 1
        for n in units:
            at = [s for s in plan.sections if _unit_of(s.point, truth["unit"]) == n]
            if not at or not mentions(at[0].point, keywords(item)):
                missed.append(f"{item} ({truth['unit']} {n})")
                break
    return (1.0 - len(missed) / total if total else 1.0), missed


def constraint_satisfaction(truth: dict[str, Any], plan, texts: dict[int, str], doc: str
                            ) -> tuple[int, int, list[str]]:
    """(met, checkable, misses) over the ground truth's constraints, each in its section."""
    met = total = 0
    misses = []

    def tally(ok: bool, what: str) -> None:
        nonlocal met, total
        total += 1
        met += ok
        if not ok:
            misses.append(what)

    by_index = {s.index: s for s in plan.sections}
    if truth.get("ending"):
        c = Constraint("ending", "ending", "", truth["ending"], "each", [],
                       keywords(truth["ending"]))
        for i in sorted(by_index):
            tally(check_one(texts.get(i, ""), c)[0],
                  f"section {i}: no {truth['ending']} at its end")
    for item, units in truth["items"]:
        c = Constraint("item", "item", item, item, "units", units, keywords(item))
        for n in units:
            at = [s.index for s in plan.sections if _unit_of(s.point, truth["unit"]) == n]
            ok = bool(at) and check_one(texts.get(at[0], ""), c)[0]
            tally(ok, f"{truth['unit']} {n}: “{item}” missing")
    if truth.get("table"):
        c = Constraint("table", "table", "", "table", "once")
        about = [s.index for s in plan.sections if mentions(s.point, keywords(truth["table"]))]
        ok = bool(about) and any(check_one(texts.get(i, ""), c)[0] for i in about)
        tally(ok, f"no table in the section about {truth['table']}")
    if truth.get("variety"):
        c = Constraint("language", "language", "", truth["variety"], "each")
        for i in sorted(by_index):
            tally(check_one(texts.get(i, ""), c)[0], f"section {i}: spelling")
    if truth.get("separator"):
        written = [i for i in sorted(texts) if texts[i].strip()]
        sep = f"\n\n{truth['separator']}\n\n"
        tally(doc.count(sep) == len(written) - 1, "separator count")
    return met, total, misses


def run_one(llm, item: dict[str, Any], target: int) -> dict[str, Any]:
    began = time.perf_counter()
    plan = make_plan(llm, item["text"], target)
    plan_seconds = time.perf_counter() - began
    saved: dict[int, Any] = {}
    result = write_document(item["text"], plan, backend=llm, done_sections={},
                            save_section=lambda i, r: saved.__setitem__(i, r))
    seconds = time.perf_counter() - began
    texts = {i: r.text for i, r in saved.items()}
    coverage, missed = plan_coverage(item, plan) if item.get("generated") else (None, [])
    met, total, misses = constraint_satisfaction(item, plan, texts, result.text) \
        if item.get("generated") else (0, 0, [])
    words = count_words(result.text)
    fixes = [c for r in saved.values() for c in r.checks if c.get("tries")]
    return {
        "set": item.get("set", "generated"), "kind": item["kind"], "target": target,
        "instruction": item["text"][:160], "words": words,
        "length_score": round(length_score(target, words), 1),
        "plan_source": plan.source, "sections": len(plan.sections), "plan_note": plan.note[:400],
        "plan_coverage": None if coverage is None else round(coverage, 3),
        "plan_missed": missed, "constraints_met": met, "constraints_total": total,
        "constraint_satisfaction": round(met / total, 3) if total else None,
        "constraint_misses": misses[:20],
        "fix_generations": sum(c["tries"] for c in fixes),
        "fixed": sum(1 for c in fixes if c["fixed"]),
        "dropped_paragraphs": sum(r.dropped_paragraphs for r in saved.values()),
        "repetition": round(cross_section_repetition([texts[i] for i in sorted(texts)]), 4),
        "distinct_4gram": round(distinct_ngram_share(result.text), 3),
        "plan_seconds": round(plan_seconds, 1), "seconds": round(seconds, 1),
        "words_per_min": round(words / seconds * 60, 1) if seconds else 0,
        "sections_text": [texts[i] for i in sorted(texts)],
        "sample": result.text[:600],
    }


def human_sections(data: Path, count: int, words: int, essays: int = 3) -> list[list[str]]:
    """Human-written texts of ``count`` sections of ``words`` words: the longest Paul Graham
    essays, each cut in order (fewer sections when an essay is shorter; at least 2)."""
    folder = data / "pg_essays" / "PaulGrahamEssays"
    if not folder.is_dir() or count < 2 or words < 1:
        return []
    texts = sorted((p.read_text(errors="replace") for p in folder.glob("*.txt")),
                   key=len, reverse=True)[:essays]
    cut = []
    for text in texts:
        ws = text.split()
        n = min(count, len(ws) // words)
        if n >= 2:
            cut.append([" ".join(ws[k * words:(k + 1) * words]) for k in range(n)])
    return cut


def references(rows: list[dict[str, Any]], data: Path | None = None) -> None:
    """Each row's reference levels: its sections against unrelated texts of this run
    (another kind's text), the mean over those; with ``data``, human-written text of as many
    sections of the same length, and the restated-sentence shares (which embed sentences)."""
    for row in rows:
        others = [r for r in rows if r["kind"] != row["kind"] and r["sections_text"]]
        levels = [unrelated_repetition(row["sections_text"], o["sections_text"]) for o in others]
        row["repetition_unrelated"] = round(sum(levels) / len(levels), 4) if levels else None
        if data is None or not row["sections_text"]:
            continue
        mine = row["sections_text"]
        if "restated" not in row:
            row["restated"] = round(restated_share(mine, embed=sentence_vectors), 4)
        shares = [restated_share(mine, [o["sections_text"]] * len(mine), embed=sentence_vectors)
                  for o in others]
        row["restated_unrelated"] = round(sum(shares) / len(shares), 4) if shares else None
        if "repetition_human" not in row:
            words = max(1, row["words"] // len(mine))
            human = human_sections(data, len(mine), words)
            row["repetition_human"] = round(sum(cross_section_repetition(h) for h in human)
                                            / len(human), 4) if human else None
            shares = [restated_share(h, embed=sentence_vectors) for h in human]
            row["restated_human"] = round(sum(shares) / len(shares), 4) if shares else None


def items_for(args) -> list[dict[str, Any]]:
    items = []
    for target in args.lengths:
        for k, kind in enumerate(args.kinds):
            item = instruction(kind, target, k)
            items.append({**item, "generated": True, "target": target})
    data = Path(args.data)
    if args.longwrite and (data / "longwrite").exists():
        for p in longwrite_prompts(data, "en")[:args.longwrite]:
            items.append({"kind": "longwrite", "set": "longwrite", "text": p["prompt"],
                          "target": min(p["length"], max(args.lengths))})
    if args.hellobench and (data / "hellobench").exists():
        for p in hellobench_prompts(data)[:args.hellobench]:
            items.append({"kind": "hellobench", "set": "hellobench", "text": p["prompt"],
                          "target": min(p["length"], max(args.lengths))})
    return items


def _mean(rows, key):
    values = [r[key] for r in rows if r.get(key) is not None]
    return sum(values) / len(values) if values else None


def _level(row: dict[str, Any], key: str) -> str:
    """A measure with its references: "0.030 (0.003 / 0.021)"."""
    def fmt(value: Any) -> str:
        return "–" if value is None else f"{value:.3f}"
    return (f"{fmt(row.get(key))} ({fmt(row.get(key + '_unrelated'))} / "
            f"{fmt(row.get(key + '_human'))})")


def write_markdown(out: Path, results: dict[str, Any]) -> None:
    rows = results["rows"]
    lines = ["# Writing quality benchmark (AgentWrite, embedded model)", "",
             f"Model: {results['model']}. Command: `{results['command']}`.", "",
             *machine_lines(results),
             "| set | kind | target | words | length score | plan | sections | plan coverage | "
             "constraints met | repetition (unrelated / human) | restated sentences "
             "(unrelated / human) | distinct 4-grams | fixes | repeats dropped | s | words/min | "
             "raw words/min | vs raw |",
             "|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
             "---:|"]
    for r in rows:
        cov = "–" if r["plan_coverage"] is None else f"{100 * r['plan_coverage']:.0f} %"
        share = 100 * (r["constraint_satisfaction"] or 0)
        sat = "–" if not r["constraints_total"] else \
            f"{r['constraints_met']}/{r['constraints_total']} ({share:.0f} %)"
        lines.append(
            f"| {r['set']} | {r['kind']} | {r['target']:,} | {r['words']:,} | "
            f"{r['length_score']} | {r['plan_source']} | {r['sections']} | {cov} | {sat} | "
            f"{_level(r, 'repetition')} | {_level(r, 'restated')} | "
            f"{r['distinct_4gram']} | {r['fix_generations']} | {r['dropped_paragraphs']} | "
            f"{r['seconds']} | {r['words_per_min']} | {r.get('raw_words_per_min', '–')} | "
            f"{r.get('vs_raw', '–')} |")
    generated = [r for r in rows if r["set"] == "generated"]
    if rows:
        met = sum(r["constraints_met"] for r in generated)
        total = sum(r["constraints_total"] for r in generated)
        lines += ["", "Summary:", "",
                  "- plan coverage (generated): "
                  f"{100 * (_mean(generated, 'plan_coverage') or 0):.1f} % mean",
                  f"- constraint satisfaction (generated): {met}/{total}"
                  + (f" = {100 * met / total:.1f} %" if total else ""),
                  f"- cross-section repetition: {_mean(rows, 'repetition') or 0:.4f} mean, "
                  f"unrelated texts {_mean(rows, 'repetition_unrelated') or 0:.4f} mean, "
                  f"human text {_mean(rows, 'repetition_human') or 0:.4f} mean",
                  f"- restated sentences: {_mean(rows, 'restated') or 0:.4f} mean, "
                  f"unrelated texts {_mean(rows, 'restated_unrelated') or 0:.4f} mean, "
                  f"human text {_mean(rows, 'restated_human') or 0:.4f} mean",
                  f"- length score: {_mean(rows, 'length_score') or 0:.1f} mean, "
                  f"min {min(r['length_score'] for r in rows)}",
                  f"- vs raw decode: {_mean(rows, 'vs_raw') or 0:.2f} mean, "
                  f"min {min((r.get('vs_raw') or 0) for r in rows):.2f}"]
        misses = [(r["kind"], r["target"], m) for r in rows for m in r["constraint_misses"][:5]]
        if misses:
            lines += ["", "Constraints missed (first 5 per text):", ""]
            lines += [f"- {k} {t:,}: {m}" for k, t, m in misses]
    (out / "results.md").write_text("\n".join(lines) + "\n")


def plot(out: Path, results: dict[str, Any]) -> None:
    rows = results["rows"]
    if not rows:
        return
    plt = pyplot()
    labels = [f"{r['kind'][:6]} {r['target'] // 1000}k" for r in rows]
    fig, axes = plt.subplots(1, 4, figsize=(17, 4))
    axes[0].bar(labels, [100 * (r["plan_coverage"] or 0) for r in rows], color="#2f6fb0",
                label="plan coverage")
    axes[0].bar(labels, [100 * (r["constraint_satisfaction"] or 0) for r in rows],
                color="#27ae60", alpha=0.6, width=0.5, label="constraints met")
    axes[0].axhline(95, color="#2f6fb0", ls="--", lw=1)
    axes[0].axhline(80, color="#27ae60", ls="--", lw=1)
    axes[0].set_ylim(0, 105)
    axes[0].set_title("Coverage / constraints (%)")
    axes[0].legend(fontsize=7)
    axes[1].bar(labels, [r["repetition"] for r in rows], color="#c0392b", label="within text")
    axes[1].plot(labels, [r.get("repetition_unrelated") or 0 for r in rows], "ko--",
                 label="unrelated texts")
    axes[1].plot(labels, [r.get("repetition_human") or 0 for r in rows], "g^:",
                 label="human text, same sections")
    axes[1].set_title("Cross-section 4-gram repetition")
    axes[1].legend(fontsize=7)
    bar_panel(axes[2], labels, [r["length_score"] for r in rows], "Length score (goal ≥ 90)",
              goal=90, ylim=(0, 100))
    bar_panel(axes[3], labels, [r.get("vs_raw") or 0 for r in rows],
              "Words/min vs raw decode (goal ≥ 0.9)", color="#8e44ad", goal=0.9)
    for ax in axes:
        ax.tick_params(axis="x", rotation=40, labelsize=7)
    fig.tight_layout()
    fig.savefig(out / "writing_quality.png", dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="var/bench")
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--lengths", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--longwrite", type=int, default=1)
    parser.add_argument("--hellobench", type=int, default=1)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--report-only", action="store_true",
                        help="redo results.md and the plot from results.json")
    args = parser.parse_args(argv)
    out = Path(args.out) / "writing_quality"
    out.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        results = json.loads((out / "results.json").read_text())
        references(results["rows"], Path(args.data))
        write_markdown(out, results)
        plot(out, results)
        print((out / "results.md").read_text())
        return 0
    if args.quick:
        args.lengths, args.kinds, args.longwrite, args.hellobench = [1000], ["guide", "diary"], 0, 0
    from workers.llm import get_backend

    llm = get_backend()
    llm.count_tokens("warm up")
    results: dict[str, Any] = {"model": f"{llm.name}:{llm.model}",
                               "command": "python -m bench.writing_quality " + " ".join(
                                   argv if argv is not None else sys.argv[1:]),
                               "machine": describe_machine(llm.name), "rows": [],
                               "raw_decodes": [raw_decode(llm)]}
    for item in items_for(args):
        row = run_one(llm, item, item["target"])
        against_raw(llm, row, results["raw_decodes"], "words_per_min")
        results["rows"].append(row)
        references(results["rows"], Path(args.data))
        print(json.dumps({k: v for k, v in row.items() if k not in ("sample", "sections_text")}),
              flush=True)
        (out / "results.json").write_text(json.dumps(results, indent=2))
    write_markdown(out, results)
    plot(out, results)
    print((out / "results.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
