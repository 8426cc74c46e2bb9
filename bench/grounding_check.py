"""Grounding check, quickly: abstention on unanswerable questions and false abstention on
answerable ones, over two real LooGLE documents, with the embedded model.

    python -m bench.grounding_check [--strategies rag] [--questions 8] [--data DIR] [--out DIR]
    python -m bench.grounding_check --facts 8000 [--seed 0]     # the check alone, no model

Answerable: the document's own short-dependency questions (the gold evidence is in it).
Unanswerable: the other document's questions (off topic), and questions on the document's
own subject about facts it does not state (on topic, written here). Every question is
answered once with grounding off (the model's draft, its citations, the time); each
strictness level is then applied to the same draft exactly as ``answer()`` does at its
end, so the levels are compared on identical answers. Writes results.json and results.md
into OUT/grounding_check; the table goes to stdout.

``--facts TOKENS``: the check alone, without the model, on answers written here for the QA
quality benchmark's paraphrased facts (``bench.qa_facts``: every kind, in the three
registers, a document of TOKENS per register holding two facts of each kind). Supported
answers (the true value, bare, restated or the fact sentence copied; cited at the fact
sentence, at a passage around it, at the sentence after it, or not at all) must be kept;
unsupported ones (another fact's value or sentence, cited where it was read; an invented
value; a question about a subject the document never names answered with a value of the
asked kind) must abstain. Reported per level and kind: kept / abstained.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import sys
import time
from dataclasses import asdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from workers.qa import SourceDocument, answer  # noqa: E402
from workers.qa.cleantext import clean_answer  # noqa: E402
from workers.qa.grounding import LEVELS, check  # noqa: E402
from workers.qa.retrieval import InMemoryRetriever  # noqa: E402

DEFAULT_DATA = Path("/work/shared/data/loogle/shortdep_qa.jsonl")
DOCUMENTS = (0, 4)  # José Luis Picardo (~16k tokens), Prelude to the invasion of Ukraine
# Facts on each document's own subject that it does not state (checked: the key words
# of each occur nowhere in the text).
ON_TOPIC = {
    0: [
        "What was the name of Picardo's dog?",
        "How many grandchildren did Picardo have?",
        "Which football club did Picardo support?",
        "What car did Picardo drive?",
    ],
    4: [
        "What was the name of the Russian general who led the parade in Minsk?",
        "How many tanks did Ukraine buy from Germany in 2020?",
        "Which football stadium hosted the peace talks?",
        "What was the weather in Kyiv on 24 February 2022?",
    ],
}


def load(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.open()]
    for row in rows:
        if isinstance(row["qa_pairs"], str):
            row["qa_pairs"] = ast.literal_eval(row["qa_pairs"])
    return rows


def cases(rows: list[dict], per_document: int) -> list[dict]:
    out = []
    for n in DOCUMENTS:
        other = DOCUMENTS[1] if n == DOCUMENTS[0] else DOCUMENTS[0]
        doc = rows[n]
        for qa in doc["qa_pairs"][:per_document]:
            out.append({"document": n, "question": qa["Q"], "gold": qa["A"], "answerable": True,
                        "evidence": qa["S"]})
        for qa in rows[other]["qa_pairs"][: per_document // 2]:
            out.append({"document": n, "question": qa["Q"], "answerable": False,
                        "kind": "off topic"})
        for q in ON_TOPIC[n]:
            out.append({"document": n, "question": q, "answerable": False, "kind": "on topic"})
    return out


def run(args: argparse.Namespace) -> list[dict]:
    rows = load(args.data)
    docs = {n: SourceDocument(n, rows[n]["title"], rows[n]["input"]) for n in DOCUMENTS}
    retrievers = {n: InMemoryRetriever([docs[n]], dense=True) for n in DOCUMENTS}
    results = []
    for case in cases(rows, args.questions):
        doc = docs[case["document"]]
        for strategy in args.strategies:
            began = time.perf_counter()
            result = answer(case["question"], [doc], strategy, retrieve=retrievers[doc.id],
                            grounding="off", answer_tokens=64)
            seconds = time.perf_counter() - began
            row = {**case, "strategy": result.strategy, "draft": result.text,
                   "citations": [asdict(c) for c in result.citations],
                   "seconds": round(seconds, 1), "levels": {}}
            for level in LEVELS:
                began = time.perf_counter()
                verdict = check(case["question"], clean_answer(result.text), result.citations,
                                [doc], level)
                row["levels"][level] = {
                    "grounded": verdict.grounded, "abstained": verdict.abstained,
                    "text": verdict.text, "verdict": verdict.notes.get("verdict"),
                    "reasons": verdict.notes.get("reasons"),
                    "check_seconds": round(time.perf_counter() - began, 3),
                }
            results.append(row)
            (args.out / "grounding_check" / "results.json").write_text(
                json.dumps(results, indent=1, ensure_ascii=False))  # after every answer
            print(json.dumps({k: row[k] for k in ("question", "answerable", "draft")}
                             | {lv: row["levels"][lv]["abstained"] for lv in LEVELS}),
                  flush=True)
    return results


def right(row: dict) -> bool:
    """The draft states the gold answer (crude): 40 % of its content words, or its yes/no."""
    gold, draft = row["gold"].strip().lower(), row["draft"].strip().lower()
    if gold.rstrip(".") in ("yes", "no"):
        return draft.startswith(gold.rstrip("."))
    words = {w for w in re.findall(r"\w+", gold) if len(w) > 3}
    return bool(words) and sum(w in draft for w in words) >= 0.4 * len(words)


def table(results: list[dict]) -> str:
    lines = ["| strategy | level | unanswerable abstained | answerable abstained (false) "
             "| of which the draft was right | answerable grounded | check ms (mean) |",
             "|---|---|---|---|---|---|---|"]
    for strategy in sorted({r["strategy"] for r in results}):
        rows = [r for r in results if r["strategy"] == strategy]
        un = [r for r in rows if not r["answerable"]]
        an = [r for r in rows if r["answerable"]]
        for level in LEVELS:
            a = sum(r["levels"][level]["abstained"] for r in un)
            f = sum(r["levels"][level]["abstained"] for r in an)
            g = sum(r["levels"][level]["grounded"] for r in an)
            fr = sum(r["levels"][level]["abstained"] and right(r) for r in an)
            nr = sum(right(r) for r in an)
            ms = 1000 * sum(r["levels"][level]["check_seconds"] for r in rows) / len(rows)
            lines.append(f"| {strategy} | {level} | {a}/{len(un)} ({100 * a / len(un):.0f} %) "
                         f"| {f}/{len(an)} ({100 * f / len(an):.0f} %) | {fr} of {nr} right "
                         f"| {g}/{len(an)} "
                         f"| {ms:.0f} |")
    return "\n".join(lines)


# -- the check alone, on written answers to the paraphrased facts ----------------------------

PASSAGE_CHARS = 1000  # about a retrieval passage (the embedder's window)


def _sentence_after(text: str, end: int) -> tuple[int, int]:
    from workers.qa.citations import sentence_units

    units = sentence_units(text, end, min(len(text), end + 600))
    return units[0] if units else (end, end)


def fact_cases(tokens: int, seed: int, data: Path, per_kind: int = 1) -> list[dict]:
    """Answers to the paraphrased facts, each with its citations and whether the documents
    support it (see ``--facts``)."""
    import random

    from bench.qa_facts import KINDS, REGISTERS, build_document, load_sources, make_fact

    sources = load_sources(data)
    rng = random.Random(f"grounding-{seed}")
    out: list[dict] = []
    for register in REGISTERS:
        doc = build_document(register, tokens, [k for k in KINDS for _ in range(per_kind + 1)],
                             list(KINDS), rng, sources)
        source = SourceDocument(f"{register}-{tokens}", register, doc.text)
        facts = [q for q in doc.questions if q.answerable]
        # per kind, ``per_kind`` facts are asked for; the other one is "another subject's"
        asked = [q for k in KINDS for q in [o for o in facts if o.kind == k][:per_kind]]
        for q in asked + [q for q in doc.questions if not q.answerable]:
            f = q.fact
            if not q.answerable:  # its subject is in no sentence: any value is unsupported
                other = next(o for o in facts if o.kind == q.kind)
                out.append(_case(source, q, f"{other.fact.value}.", [(other.start, other.end)],
                                 False, "unanswerable, a value of the asked kind"))
                continue
            span = (q.start, q.end)
            lo = max(0, q.start - rng.randrange(PASSAGE_CHARS - (q.end - q.start)))
            passage = (lo, min(len(doc.text), lo + PASSAGE_CHARS))
            after = _sentence_after(doc.text, q.end)
            bare = f"{f.value}."
            for form, text, where, spans in (
                ("bare", bare, "sentence", [span]),
                ("bare", bare, "passage", [passage]),
                ("bare", bare, "next sentence", [after]),
                ("restated", f"{f.question.rstrip('?')}: {f.value}.", "passage", [passage]),
                ("restated", f"{f.question.rstrip('?')}: {f.value}.", "nothing", []),
                ("copied", f.sentence, "passage", [passage]),
            ):
                out.append(_case(source, q, text, spans, True, f"{form}, cited: {where}"))
            other = rng.choice([o for o in facts if o.kind == q.kind and o is not q])
            for form, text in {"bare": f"{other.fact.value}.",
                               "copied": other.fact.sentence}.items():
                out.append(_case(source, q, text, [(other.start, other.end)], False,
                                 f"another subject's {form}"))
            invented = make_fact(q.kind, rng, doc.text).value
            out.append(_case(source, q, f"{invented}.", [span], False, "invented value"))
    return out


def _case(doc: SourceDocument, q, text: str, spans, supported: bool, how: str) -> dict:  # noqa: ANN001
    from workers.qa.citations import make_citation

    return {"document": doc, "kind": q.kind, "question": q.fact.question, "answer": text,
            "citations": [make_citation(doc, s, e) for s, e in spans],
            "supported": supported, "how": how}


def facts_table(cases: list[dict], levels: tuple[str, ...] = ("strict", "normal")
                ) -> tuple[str, list[dict]]:
    """Per level: supported answers kept and unsupported ones abstained, by kind; and the
    cases the check got wrong."""
    from bench.qa_facts import KINDS

    wrong: list[dict] = []
    kept: dict[tuple, list[bool]] = {}
    for case in cases:
        for level in levels:
            v = check(case["question"], case["answer"], case["citations"], [case["document"]],
                      level)
            ok = (not v.abstained) if case["supported"] else v.abstained
            kept.setdefault((level, case["kind"], case["supported"]), []).append(ok)
            if not ok:
                wrong.append({"level": level, **{k: case[k] for k in (
                    "kind", "question", "answer", "how", "supported")},
                    "reasons": v.notes.get("reasons"),
                    "claims": v.notes.get("claims")})
    lines = ["| level | answers | " + " | ".join(KINDS) + " | all |",
             "|---|---|" + "---:|" * (len(KINDS) + 1)]
    for level in levels:
        for supported, label in ((True, "supported: kept"), (False, "unsupported: abstained")):
            cells = [kept.get((level, k, supported), []) for k in KINDS]
            total = [x for c in cells for x in c]
            lines.append(f"| {level} | {label} | " + " | ".join(
                f"{sum(c)}/{len(c)}" for c in cells) + f" | {sum(total)}/{len(total)} |")
    return "\n".join(lines), wrong


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strategies", nargs="+", default=["rag"])
    parser.add_argument("--questions", type=int, default=8, help="answerable per document")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=Path("var/bench"))
    parser.add_argument("--rescore", type=Path, help="results.json to re-check (no model)")
    parser.add_argument("--facts", type=int, metavar="TOKENS",
                        help="check written answers to paraphrased facts (no model)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--levels", nargs="+", default=["strict", "normal"],
                        choices=["strict", "normal"], help="with --facts")
    args = parser.parse_args()
    out = args.out / "grounding_check"
    out.mkdir(parents=True, exist_ok=True)
    if args.facts:
        cases = fact_cases(args.facts, args.seed, args.data.parent.parent)
        report, wrong = facts_table(cases, tuple(args.levels))
        (out / "facts.md").write_text(report + "\n")
        (out / "facts_wrong.json").write_text(json.dumps(wrong, indent=1, ensure_ascii=False))
        print(report)
        print(f"{len(wrong)} wrong verdicts: {out / 'facts_wrong.json'}")
        return 0
    if args.rescore:
        rows = load(args.data)
        results = json.loads(args.rescore.read_text())
        docs = {n: SourceDocument(n, rows[n]["title"], rows[n]["input"]) for n in DOCUMENTS}
        for r in results:
            from workers.qa.types import Citation

            cites = [Citation(**c) for c in r["citations"]]
            for level in LEVELS:
                began = time.perf_counter()
                v = check(r["question"], clean_answer(r["draft"]), cites, [docs[r["document"]]],
                          level)
                r["levels"][level].update(grounded=v.grounded, abstained=v.abstained,
                                          text=v.text, reasons=v.notes.get("reasons"),
                                          check_seconds=round(time.perf_counter() - began, 3))
    else:
        results = run(args)
    (out / "results.json").write_text(json.dumps(results, indent=1, ensure_ascii=False))
    report = table(results)
    (out / "results.md").write_text(report + "\n")
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
