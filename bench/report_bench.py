"""Reports from the library (issue 20.3): a text written from three reference documents with
citations, at 2,000 and 10,000 words, with the embedded model.

    python -m bench report [--lengths 2000 10000] [--data /work/shared/data] [--out DIR]

The sources are three LooGLE documents (Wikipedia articles of 66–127k characters); the
library is the engine's retrieval over them (``InMemoryRetriever``, lexical), the plan is
made from what they hold (key passages retrieved for the instruction), and each section is
written from the passages retrieved for its point and cited by ``workers.writing.citing``
(a sentence gets a citation only when the QA grounding check finds it supported).

Measured per length: words and the LongBench-Write length score (goal ≥ 90); citation
density (markers per 100 words, share of prose sentences cited); and the share of cited
sentences whose cited span supports them, checked again afterwards on the span alone by
the grounding check at "normal" and at "strict" (0.7 of the sentence's content words or
cosine 0.7 in the span) and by the attaching rule itself (``citing.attests``: strict with
the words required and the embedder agreeing; a check of the markers' placement, 100 % by
construction). Also the markers the model wrote ([n] after a sentence from source n) and
how many the check confirmed (its sentence cited at a span of that source; all others
removed), the seconds spent writing and citing, and up to 12 cited sentences with their
quotes to read. Writes results.json, results.md and report_bench.png into DIR/report.
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
from workers.qa.citations import sentence_units  # noqa: E402
from workers.qa.retrieval import InMemoryRetriever  # noqa: E402
from workers.qa.types import SourceDocument  # noqa: E402
from workers.writing import length_score, make_plan, write_document  # noqa: E402
from workers.writing.citing import (  # noqa: E402
    MARKER,
    TOPIC_PASSAGES,
    Library,
    attests,
    citation_stats,
    source_topics,
    supports,
)

DEFAULT_DATA = Path("/work/shared/data")
SOURCES = ("Police brutality by country", "Execution of Nagaenthran K. Dharmalingam",
           "Prelude to the Russian invasion of Ukraine")
# One subject and no list, so that the plan is made from the sources (an instruction that
# lists parts is planned from its parts first).
INSTRUCTION = "Write a report on the use of force by states against their own citizens."


def load_sources(data: Path) -> list[SourceDocument]:
    texts: dict[str, str] = {}
    with open(data / "loogle" / "shortdep_qa.jsonl", encoding="utf-8") as f:
        for line in f:
            item = json.loads(line)
            if item["title"] in SOURCES:
                texts.setdefault(item["title"], item["input"])
    return [SourceDocument(i, title, texts[title]) for i, title in enumerate(SOURCES, start=1)]


def cited_sentences(text: str, citations: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(sentence without markers, quote) for each marker of a section text."""
    out = []
    for s, e in sentence_units(text):
        sentence = text[s:e]
        for m in MARKER.finditer(sentence):
            k = int(m.group(1))
            if 1 <= k <= len(citations):
                plain = MARKER.sub("", sentence).replace(" .", ".").strip()
                out.append((plain, citations[k - 1]["quote"]))
    return out


def run_length(llm, documents: list[SourceDocument], words: int) -> dict[str, Any]:
    retrieve = InMemoryRetriever(documents)
    topics = source_topics({}, [p.text for p in retrieve(INSTRUCTION, TOPIC_PASSAGES)])
    started = time.perf_counter()
    plan = make_plan(llm, INSTRUCTION, words, topics=topics)
    plan_s = time.perf_counter() - started
    library = Library(documents, retrieve)
    cite_seconds = 0.0
    cite = library.cite

    def timed_cite(*args: Any, **kwargs: Any):  # noqa: ANN202
        nonlocal cite_seconds
        t = time.perf_counter()
        try:
            return cite(*args, **kwargs)
        finally:
            cite_seconds += time.perf_counter() - t

    library.cite = timed_cite  # type: ignore[method-assign]
    sections: dict[int, Any] = {}
    started = time.perf_counter()
    def progress(current: int, total: int, message: str = "") -> None:
        print(f"{words}: {message} ({time.perf_counter() - started:.0f} s, citing "
              f"{cite_seconds:.0f} s)", flush=True)

    result = write_document(INSTRUCTION, plan, backend=llm, done_sections={},
                            save_section=sections.__setitem__, library=library,
                            progress=progress)
    write_s = time.perf_counter() - started
    texts = [sections[i].text for i in sorted(sections)]
    stats = citation_stats(texts)
    pairs = [p for i in sorted(sections) for p in cited_sentences(sections[i].text,
                                                                  sections[i].citations)]
    normal = sum(supports(s, q, "normal") for s, q in pairs)
    strict = sum(supports(s, q, "strict") for s, q in pairs)
    attached = sum(attests(s, q) for s, q in pairs)
    citing = [sections[i].citing for i in sorted(sections)]
    return {
        "target": words, "words": result.words,
        "length_score": round(length_score(words, result.words), 1),
        "plan": plan.source, "sections": len(plan.sections), "topics": len(topics),
        **{k: stats[k] for k in ("sentences", "cited_sentences", "markers", "per_100_words",
                                 "cited_share")},
        "cited_pairs": len(pairs),
        "supported_normal": round(normal / len(pairs), 3) if pairs else None,
        "supported_strict": round(strict / len(pairs), 3) if pairs else None,
        "supported_rule": round(attached / len(pairs), 3) if pairs else None,
        "model_markers": sum(c.get("model_markers", 0) for c in citing),
        "confirmed_markers": sum(c.get("confirmed_markers", 0) for c in citing),
        "removed_markers": sum(c.get("removed_markers", 0) for c in citing),
        "plan_s": round(plan_s, 1), "write_s": round(write_s, 1),
        "cite_s": round(cite_seconds, 1),
        "words_per_min": round(result.words / write_s * 60, 1) if write_s else 0.0,
        "examples": [(s, q[:300]) for s, q in pairs[:12]],
        "texts": texts,  # to read what was and was not cited
        "points": [s.point[:120] for s in plan.sections],
    }


def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def write_markdown(out: Path, results: dict[str, Any]) -> None:
    lines = ["# Reports from the library", "", *machine_lines(results), "",
             f"Sources: {', '.join(SOURCES)} (LooGLE). Instruction: “{INSTRUCTION}”", "",
             "| target | words | length score | plan | sections | sentences | cited | "
             "cited share | citations /100 words | supported (normal, span alone) | "
             "supported (strict, span alone) | attaching rule (span alone) | model markers "
             "(confirmed) | write s | of which citing s | words/min |",
             "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results["runs"]:
        lines.append(
            f"| {r['target']:,} | {r['words']:,} | {r['length_score']} | {r['plan']} | "
            f"{r['sections']} | {r['sentences']} | {r['cited_sentences']} | "
            f"{pct(r['cited_share'])} | {r['per_100_words']} | {pct(r['supported_normal'])} | "
            f"{pct(r['supported_strict'])} | {pct(r['supported_rule'])} | "
            f"{r['model_markers']} ({r['confirmed_markers']}) | {r['write_s']} | "
            f"{r['cite_s']} | {r['words_per_min']} |")
    (out / "results.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def plot(out: Path, results: dict[str, Any]) -> None:
    plt = pyplot()
    runs = results["runs"]
    labels = [f"{r['target']:,}" for r in runs]
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.6))
    bar_panel(axes[0], labels, [r["length_score"] for r in runs], "length score", goal=90,
              ylim=(0, 100))
    bar_panel(axes[1], labels, [100 * (r["supported_strict"] or 0) for r in runs],
              "cited sentences supported\n(strict, span alone) %", ylim=(0, 100),
              color="#5a9e6f")
    bar_panel(axes[2], labels, [100 * r["cited_share"] for r in runs], "sentences cited %",
              ylim=(0, 100), color="#c6874f")
    bar_panel(axes[3], labels, [r["per_100_words"] for r in runs], "citations per 100 words",
              color="#8a6fc6")
    for ax in axes:
        ax.set_xlabel("target words")
    fig.tight_layout()
    fig.savefig(out / "report_bench.png", dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="var/bench")
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--lengths", type=int, nargs="+", default=[2000, 10000])
    args = parser.parse_args(argv)
    data = Path(args.data)
    if not (data / "loogle" / "shortdep_qa.jsonl").exists():
        print(f"report bench: no LooGLE data under {data}; skipped")
        return 0
    out = Path(args.out) / "report"
    out.mkdir(parents=True, exist_ok=True)
    llm = get_backend()
    documents = load_sources(data)
    results: dict[str, Any] = {"machine": describe_machine(llm.name), "runs": []}
    for words in args.lengths:
        run = run_length(llm, documents, words)
        results["runs"].append(run)
        print(json.dumps({k: v for k, v in run.items() if k != "points"}), flush=True)
        (out / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
        write_markdown(out, results)
        plot(out, results)
    print((out / "results.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
