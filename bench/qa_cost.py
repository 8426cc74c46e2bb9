"""Per-question cost on the hot path: tokenizer calls and document text read, before/after.

    python -m bench.qa_cost --out var/bench --label after [--data /work/shared/data]
        [--documents 10] [--tokens 100000] [--questions 3] [--grounding normal|off]
        [--skip-key] [--report-only]

Ten documents of 100k tokens each (Paul Graham essays from DATA/pg_essays, else generated
prose; ``workers.qa.haystack``), the first with a pass key, the others with a fact needle.
The index (BM25 passages, in memory: the app's is built at ingest) is built once, outside
the measured questions. Each question goes through ``answer(strategy="auto")`` as the chat
job calls it, and the bench counts:

- tokenizer calls of the LLM backend (``count_tokens``: what vLLM without a local tokenizer
  sends to ``/tokenize``) and the characters they tokenised, in total and in ``choose``;
- bytes of document text read, by where it was read: the app's query (before: every text
  was loaded with its row) or the trace step that read it (after: the documents are given
  as the app gives them, with their ingest token count, a loader of the text and one of a
  span).

``--label before`` runs against a tree without the lazy documents (a ``git worktree`` of
the commit before: the bench detects which ``SourceDocument`` it has); ``--grounding off``
(labels before-off / after-off) shows what the strategies read without the grounding
check, which searches every document. Each label is saved as OUT/qa_cost/<label>.json, and
results.md/json and qa_cost.png compare the labels present, with the strategy chosen and
the answer text of each question side by side.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from bench.machine import describe_machine, machine_lines  # noqa: E402
from bench.plotting import pyplot  # noqa: E402
from workers.llm import get_backend  # noqa: E402
from workers.qa import SourceDocument, answer, build_haystack  # noqa: E402
from workers.qa import engine as qa_engine  # noqa: E402
from workers.qa import run as qa_run  # noqa: E402
from workers.qa.retrieval import InMemoryRetriever  # noqa: E402

DEFAULT_DATA = Path("/work/shared/data")
LABELS = ("before", "after", "before-off", "after-off")
PAIRS = (("before", "after"), ("before-off", "after-off"))
PARAMETERS = inspect.signature(SourceDocument).parameters
LAZY = "load" in PARAMETERS  # the tree measured has lazy documents
SPANS = "load_span" in PARAMETERS


class Counter:
    """Wraps the backend's ``count_tokens``: calls and characters, and those made inside
    ``auto``'s ``choose`` (wrapped as the engine calls it)."""

    def __init__(self, backend: Any) -> None:
        self.inner = backend.count_tokens
        backend.count_tokens = self
        self.in_choose = False
        choose = qa_engine.choose

        def choosing(*args: Any, **kwargs: Any) -> Any:
            self.in_choose = True
            try:
                return choose(*args, **kwargs)
            finally:
                self.in_choose = False

        qa_engine.choose = choosing
        self.reset()

    def reset(self) -> None:
        self.calls = self.chars = self.choose_calls = self.choose_chars = 0

    def __call__(self, text_or_messages: Any) -> int:
        chars = (len(text_or_messages) if isinstance(text_or_messages, str)
                 else sum(len(m.get("content", "")) for m in text_or_messages))
        self.calls += 1
        self.chars += chars
        if self.in_choose:
            self.choose_calls += 1
            self.choose_chars += chars
        return self.inner(text_or_messages)


def _step_name() -> str:
    """The trace step being recorded (the tree after: ``run._current_step``)."""
    step = qa_run._current_step.get()
    return step.name if step is not None else "outside a step"


class Reads:
    """Bytes of document text read per place (the app's query, or a trace step)."""

    def __init__(self) -> None:
        self.by_place: dict[str, int] = {}

    def add(self, place: str, text: str) -> None:
        self.by_place[place] = self.by_place.get(place, 0) + len(text.encode())

    def document(self, d: dict[str, Any]) -> SourceDocument:
        """As the app gives it: the ingest count, a deferred text and a span reader."""
        text = d["text"]

        def load() -> str:
            self.add(_step_name(), text)
            return text

        def load_span(start: int, end: int) -> str:
            self.add(_step_name() + " (spans)", text[start:end])
            return text[start:end]

        spans = {"load_span": load_span} if SPANS else {}
        return SourceDocument(d["id"], d["title"], tokens=d["tokens"], load=load, **spans)


def corpus(args: argparse.Namespace, llm: Any) -> list[dict[str, Any]]:
    essays = args.data / "pg_essays"
    docs = []
    for i in range(args.documents):
        kind = "passkey" if i == 0 else "needle"
        hay = build_haystack(args.tokens, kind=kind, seed=1000 + i, depth=0.3 + 0.05 * i,
                             essays_dir=essays if essays.exists() else "",
                             count_tokens=llm.count_tokens)
        docs.append({"id": i + 1, "title": f"Document {i + 1}", "text": hay.text,
                     "tokens": llm.count_tokens(hay.text), "question": hay.question,
                     "answer": hay.answer, "filler": hay.filler})
    return docs


def questions(docs: list[dict[str, Any]], n: int, skip_key: bool) -> list[dict[str, Any]]:
    """The pass key first (auto sends it to XL3M: a strategy that reads the text), then
    the distinct fact needles (rag over the index)."""
    seen, out = set(), []
    for d in docs[1:] if skip_key else docs:
        if d["question"] not in seen:
            seen.add(d["question"])
            out.append({"question": d["question"], "answer": d["answer"]})
    return out[:n]


def measure(args: argparse.Namespace) -> dict[str, Any]:
    llm = get_backend()
    llm.count_tokens("warm up")
    started = time.perf_counter()
    docs = corpus(args, llm)
    print(f"corpus: {len(docs)} documents, {sum(d['tokens'] for d in docs):,} tokens, "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    full = [SourceDocument(d["id"], d["title"], d["text"]) for d in docs]
    index = InMemoryRetriever(full)  # the app's index exists before the question
    counter = Counter(llm)
    rows = []
    for q in questions(docs, args.questions, args.skip_key):
        reads = Reads()
        if LAZY:  # the app after: ingest's token count and loaders (a deferred field)
            given = [reads.document(d) for d in docs]
        else:  # the app before: every row with its text
            for d in docs:
                reads.add("app query (all texts)", d["text"])
            given = [SourceDocument(d["id"], d["title"], d["text"]) for d in docs]
        counter.reset()
        began = time.perf_counter()
        result = answer(q["question"], given, "auto", backend=llm, retrieve=index,
                        grounding=args.grounding)
        seconds = time.perf_counter() - began
        row = {
            "question": q["question"], "expected": q["answer"], "strategy": result.strategy,
            "answer": result.text, "correct": q["answer"].lower() in result.text.lower(),
            "citations": [[c.document_id, c.start, c.end] for c in result.citations],
            "tokenizer_calls": counter.calls, "tokenized_chars": counter.chars,
            "choose_tokenizer_calls": counter.choose_calls,
            "choose_tokenized_chars": counter.choose_chars,
            "bytes_read": sum(reads.by_place.values()), "bytes_read_by_place": reads.by_place,
            "seconds": round(seconds, 1),
        }
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "citations"}), flush=True)
    return {
        "label": args.label, "command": " ".join(sys.argv), "lazy_documents": LAZY,
        "grounding": args.grounding,
        "machine": describe_machine(llm.name), "documents": len(docs),
        "tokens_per_document": args.tokens, "corpus_tokens": sum(d["tokens"] for d in docs),
        "corpus_bytes": sum(len(d["text"].encode()) for d in docs),
        "filler": docs[0]["filler"], "questions": rows,
    }


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def report(out: Path) -> None:
    runs = {label: json.loads((out / f"{label}.json").read_text())
            for label in LABELS if (out / f"{label}.json").exists()}
    if not runs:
        return
    first = next(iter(runs.values()))
    md = [
        "# Per-question cost: tokenizer calls and document text read",
        "",
        *machine_lines(first),
        f"{first['documents']} documents of ~{first['tokens_per_document']:,} tokens "
        f"({first['corpus_tokens']:,} tokens, {_mb(first['corpus_bytes'])} of text; filler: "
        f"{first['filler']}); `answer(strategy=\"auto\")` with the in-memory BM25 index as the "
        "app's index. Commands: " + "; ".join(f"`{r['command']}`" for r in runs.values()),
        "",
        "| run (grounding) | question | strategy | tokenizer calls (in choose) | chars tokenised "
        "(in choose) | text read | read where | s |",
        "|---|---|---|---:|---:|---:|---|---:|",
    ]
    for label, run in runs.items():
        for r in run["questions"]:
            where = ", ".join(f"{k}: {_mb(v)}" for k, v in r["bytes_read_by_place"].items())
            md.append(
                f"| {label} ({run.get('grounding', 'normal')}) | {r['question']} "
                f"| {r['strategy']} | {r['tokenizer_calls']} "
                f"({r['choose_tokenizer_calls']}) | {r['tokenized_chars']:,} "
                f"({r['choose_tokenized_chars']:,}) | {_mb(r['bytes_read'])} | {where or '—'} "
                f"| {r['seconds']} |")
    for pair in PAIRS:
        if not all(label in runs for label in pair):
            continue
        before, after = (runs[label]["questions"] for label in pair)
        md += ["", f"## Answers {pair[0]} and {pair[1]}", "",
               "| question | strategy | same strategy | same answer text | same citations |"
               " correct (before / after) |", "|---|---|---|---|---|---|"]
        for b, a in zip(before, after, strict=True):
            md.append(
                f"| {b['question']} | {b['strategy']} → {a['strategy']} | "
                f"{b['strategy'] == a['strategy']} | {b['answer'] == a['answer']} | "
                f"{b['citations'] == a['citations']} | {b['correct']} / {a['correct']} |")
    (out / "results.md").write_text("\n".join(md) + "\n")
    (out / "results.json").write_text(json.dumps(runs, indent=1))
    _plot(out, runs)


def _plot(out: Path, runs: dict[str, Any]) -> None:
    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    names = sorted({r["question"] for run in runs.values() for r in run["questions"]},
                   key=lambda q: (q != "What is the pass key?", q))
    width = 0.8 / len(runs)
    for ax, field, title in ((axes[0], "tokenized_chars", "characters tokenised per question"),
                             (axes[1], "bytes_read", "bytes of document text read")):
        for j, (label, run) in enumerate(runs.items()):
            by_question = {r["question"]: max(1, r[field]) for r in run["questions"]}
            at = [i for i, q in enumerate(names) if q in by_question]
            ax.bar([i + j * width for i in at], [by_question[names[i]] for i in at], width,
                   label=label)
        ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xticks([i + width * (len(runs) - 1) / 2 for i in range(len(names))],
                      [n[:28] for n in names], rotation=15, fontsize=7)
        ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(out / "qa_cost.png", dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("var/bench"))
    parser.add_argument("--label", choices=LABELS, default="after" if LAZY else "before")
    parser.add_argument("--grounding", choices=("normal", "off"), default="normal")
    parser.add_argument("--skip-key", action="store_true",
                        help="only the fact questions (rag): no XL3M scan")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--documents", type=int, default=10)
    parser.add_argument("--tokens", type=int, default=100_000)
    parser.add_argument("--questions", type=int, default=3)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    out = args.out / "qa_cost"
    out.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        (out / f"{args.label}.json").write_text(json.dumps(measure(args), indent=1))
    report(out)
    print((out / "results.md").read_text())


if __name__ == "__main__":
    main()
