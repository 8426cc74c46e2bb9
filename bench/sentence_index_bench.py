"""Small-to-big retrieval of paraphrased facts, and what the sentence index costs at ingest.

    python -m bench.sentence_index_bench --out DIR [--lengths 8192 32768 131072]
        [--registers essays report] [--data /work/shared/data] [--skip-ingest] [--db]

Retrieval only (no LLM, minutes): documents of each length and register (Paul Graham
essays; LooGLE's articles as reports; transcripts) hold one paraphrased fact of every kind
(``bench.qa_facts``: who, which organisation, where, when, which weekday, how many, what is
it called, which code). Each question is asked twice: as written (it shares the fact's
made-up anchor name, e.g. "Belthorpe") and *anchor-free* (that name removed: nothing but
meaning ties question and fact). Measured: the rank of the passage holding the fact among
the retriever's results, for the arms of ``InMemoryRetriever`` over one index:

- ``before``: BM25 + passage vectors (RRF), the index as it was;
- ``+sentences``: with the sentence arm (small-to-big);
- ``+sentences+type``: with the answer-type arm as well (what the app runs).

Ingest cost: the same text embedded as passages only (before) and as passages with their
sentence windows (one pass, ``embed_chunks``), and, with ``--db``, the table and index sizes
in Postgres after ingesting it through the app's service. Writes results.json, results.md
and recall.png.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.machine import describe_machine, machine_lines  # noqa: E402
from bench.plotting import pyplot  # noqa: E402
from bench.qa_facts import KINDS, build_document, load_sources  # noqa: E402
from workers.documents.chunking import chunk_text  # noqa: E402
from workers.documents.embeddings import get_embedder  # noqa: E402
from workers.documents.pipeline import DocumentChunk, embed_chunks  # noqa: E402
from workers.qa.retrieval import InMemoryRetriever  # noqa: E402
from workers.qa.types import SourceDocument  # noqa: E402

DEFAULT_DATA = Path("/work/shared/data")
CONFIGS = {  # name: (sentence arm, answer-type arm)
    "before": (False, False),
    "+sentences": (True, False),
    "+sentences+type": (True, True),
}
DEPTH = 50  # ranks past this count as misses
CUTS = (5, 20)  # recall@5; recall@20 is rag's default top_k


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def anchor_free(question: str, anchor: str) -> str:
    return " ".join(question.replace(anchor, "").split()).replace(" ?", "?")


def rank_of(passages, start: int) -> int | None:
    for rank, p in enumerate(passages, start=1):
        if p.start <= start < p.end:
            return rank
    return None


def retrieval(args, sources, embedder) -> list[dict]:
    rows = []
    for length in args.lengths:
        for register in args.registers:
            rng = random.Random(f"{args.seed}-{register}-{length}")
            doc = build_document(register, length, KINDS, (), rng, sources,
                                 embedder.count_tokens)
            started = time.perf_counter()
            retriever = InMemoryRetriever([SourceDocument(1, register, doc.text)], dense=True)
            built = time.perf_counter() - started
            log(f"{register} {length}: {len(retriever.passages)} passages, index {built:.0f} s")
            for q in doc.questions:
                for wording, question in (("anchored", q.fact.question),
                                          ("anchor-free", anchor_free(q.fact.question,
                                                                      q.fact.anchor))):
                    row = {"length": length, "register": register, "kind": q.kind,
                           "wording": wording, "question": question,
                           "passages": len(retriever.passages)}
                    for name, (sentences, typed) in CONFIGS.items():
                        retriever.sentences, retriever.typed = sentences, typed
                        row[name] = rank_of(retriever(question, DEPTH), q.start)
                    rows.append(row)
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    out = []
    keys = sorted({(r["length"], r["wording"]) for r in rows})
    for length, wording in keys:
        sel = [r for r in rows if r["length"] == length and r["wording"] == wording]
        for name in CONFIGS:
            ranks = [r[name] for r in sel]
            found = [x for x in ranks if x is not None]
            entry = {"length": length, "wording": wording, "config": name, "questions": len(sel),
                     "mrr": sum(1 / x for x in found) / len(sel),
                     "median_rank": statistics.median([x or DEPTH + 1 for x in ranks])}
            for cut in CUTS:
                entry[f"recall@{cut}"] = sum(1 for x in found if x <= cut) / len(sel)
            out.append(entry)
    return out


def ingest_cost(sources, embedder, tokens: int) -> dict:
    """Embedding ``tokens`` of essays as passages only vs with their sentence windows; best
    of three, interleaved (the CPU is shared: other work only ever adds time)."""
    rng = random.Random("ingest-cost")
    doc = build_document("essays", tokens, (), (), rng, sources, embedder.count_tokens)
    prefix, suffix = embedder.special_tokens
    window = embedder.max_seq_length - len(prefix) - len(suffix)
    chunks = [DocumentChunk(c.index, c.start, c.end, c.text, c.tokens, [1], "")
              for c in chunk_text(doc.text, embedder.count_tokens, window)]
    embedder.embed(["warm up"] * 4)
    before, after, windows = [], [], 0
    for _ in range(3):
        started = time.perf_counter()
        embedder.embed([c.text for c in chunks], batch_size=64)
        before.append(time.perf_counter() - started)
        started = time.perf_counter()
        embedded = embed_chunks(embedder, chunks)
        after.append(time.perf_counter() - started)
        windows = sum(len(w) for w in embedded.windows)
    real = sum(c.tokens for c in chunks)
    return {"tokens": real, "chunks": len(chunks), "sentence_windows": windows,
            "passages_only_seconds": min(before), "with_sentences_seconds": min(after),
            "ratio": min(after) / min(before),
            "windows_per_million_tokens": windows * 1_000_000 / real,
            "text": doc.text}


def db_sizes(text: str, tokens: int) -> dict:
    """Ingest ``text`` through the app's service in a throw-away database and read the
    tables' and indexes' sizes (Postgres), before and after the document."""
    import django

    # The test settings: a database of this run's own (created, migrated and dropped here)
    # and a temporary MEDIA_ROOT.
    os.environ["DJANGO_SETTINGS_MODULE"] = "apps.settings_test"
    os.environ.setdefault("TEST_REDIS_DB", "12")
    os.environ.setdefault("TEST_DB_SUFFIX", "_bench_sentences")
    from django.conf import settings

    from apps import stack

    stack.start_for(settings)  # the embedded Postgres and Redis where the settings use them
    django.setup()
    from django.core.files.base import ContentFile
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    created = setup_databases(verbosity=0, interactive=False)
    try:
        return _db_sizes(text, tokens, connection, ContentFile)
    finally:
        teardown_databases(created, verbosity=0)


def _db_sizes(text: str, tokens: int, connection, ContentFile) -> dict:  # noqa: N803
    # The apps: importable only after main()'s django.setup() (--db).
    from apps.documents import services
    from apps.documents.models import Document, Sentence
    from apps.teams.models import Team

    def sizes() -> dict[str, int]:
        with connection.cursor() as cursor:
            out = {}
            for table in ("documents_chunk", "documents_sentence"):
                cursor.execute("SELECT pg_total_relation_size(%s), pg_indexes_size(%s)",
                               [table, table])
                out[table], out[f"{table}_indexes"] = cursor.fetchone()
            return out

    team = Team.objects.create(name="bench sentence index", slug=f"bench-s2b-{os.getpid()}")
    try:
        empty = sizes()
        document = Document(team=team, title="bench", original_name="bench.txt", sha256="0" * 64,
                            kind="txt", size_bytes=len(text))
        document.file.save("bench.txt", ContentFile(text.encode()), save=False)
        document.save()
        started = time.perf_counter()
        services.ingest(document, lambda *a: None)
        seconds = time.perf_counter() - started
        full = sizes()
        # The sentence rows' share of that: write them again (HNSW inserts included).
        rows = list(Sentence.objects.filter(document=document))
        Sentence.objects.filter(document=document).delete()
        for row in rows:
            row.pk = None
        started = time.perf_counter()
        Sentence.objects.bulk_create(rows, batch_size=1000)
        sentence_write = time.perf_counter() - started
    finally:
        for d in team.documents.all():
            services.delete(d)
        team.delete()
    scale = 1_000_000 / tokens
    return {key: (full[key] - empty[key]) * scale / 2**20 for key in full} | {
        "ingest_seconds_per_million": seconds * scale,
        "sentence_write_seconds_per_million": sentence_write * scale}


def write_report(out: Path, results: dict) -> None:
    lines = [*machine_lines(results),
             "| tokens | question | arms | recall@5 | recall@20 | MRR | median rank |",
             "|---:|---|---|---:|---:|---:|---:|"]
    for s in results["summary"]:
        lines.append(f"| {s['length']:,} | {s['wording']} | {s['config']} | "
                     f"{s['recall@5']:.2f} | {s['recall@20']:.2f} | {s['mrr']:.2f} | "
                     f"{s['median_rank']:g} |")
    lines.append("")
    lines.append(f"{len(results['rows'])} questions ({results['config']['registers']}, "
                 f"kinds: {', '.join(KINDS)}); rank of the passage holding the fact "
                 f"(misses past {DEPTH} count as {DEPTH + 1} in the median).")
    if "ingest" in results:
        ing = results["ingest"]
        lines += ["", f"Ingest embedding, {ing['tokens']:,} tokens ({ing['chunks']} chunks, "
                  f"{ing['sentence_windows']:,} sentence windows): passages only "
                  f"{ing['passages_only_seconds']:.1f} s, with the sentence windows "
                  f"{ing['with_sentences_seconds']:.1f} s: **{ing['ratio']:.2f}×**; "
                  f"{ing['windows_per_million_tokens']:,.0f} windows per 1M tokens"]
    if "db" in results:
        db = results["db"]
        lines += ["", "Postgres per 1M tokens: chunks "
                  f"{db['documents_chunk']:.0f} MB (indexes {db['documents_chunk_indexes']:.0f}"
                  f" MB), sentences {db['documents_sentence']:.0f} MB (indexes "
                  f"{db['documents_sentence_indexes']:.0f} MB); ingest through the service "
                  f"{db['ingest_seconds_per_million']:.0f} s per 1M tokens, of which writing "
                  f"the sentence rows {db.get('sentence_write_seconds_per_million', 0):.0f} s"]
    (out / "results.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def plot(out: Path, results: dict) -> None:
    """Recall@20 as grouped bars: one group per (length, wording), one bar per arm set."""
    plt = pyplot()

    groups = sorted({(s["length"], s["wording"]) for s in results["summary"]})
    recall = {(s["length"], s["wording"], s["config"]): s["recall@20"]
              for s in results["summary"]}
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(groups)), 4))
    width = 0.8 / len(CONFIGS)
    for n, name in enumerate(CONFIGS):
        ax.bar([g + n * width for g in range(len(groups))],
               [recall[(length, wording, name)] for length, wording in groups], width,
               label=name)
    ax.set_xticks([g + width * (len(CONFIGS) - 1) / 2 for g in range(len(groups))],
                  [f"{length // 1024}k\n{wording}" for length, wording in groups])
    ax.set_ylabel("fact's passage in the top 20")
    ax.set_ylim(0, 1.05)
    ax.legend(loc="lower left")
    ax.set_title("Paraphrased facts: small-to-big retrieval")
    fig.tight_layout()
    fig.savefig(out / "recall.png", dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--lengths", type=int, nargs="*", default=[8192, 32768, 131072])
    parser.add_argument("--registers", nargs="*", default=["essays", "report"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--db", action="store_true", help="also measure Postgres sizes")
    parser.add_argument("--ingest-tokens", type=int, default=131072)
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite results.md and recall.png from results.json")
    args = parser.parse_args(argv)
    out = args.out / "sentence_index" if args.out.name != "sentence_index" else args.out
    out.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        results = json.loads((out / "results.json").read_text(encoding="utf-8"))
        write_report(out, results)
        plot(out, results)
        return 0
    sources = load_sources(args.data)
    embedder = get_embedder()
    results: dict = {"config": {"lengths": args.lengths, "registers": args.registers,
                                "seed": args.seed, "depth": DEPTH},
                     "machine": describe_machine("none")}
    started = time.perf_counter()
    results["rows"] = retrieval(args, sources, embedder)
    results["summary"] = summarise(results["rows"])
    results["retrieval_seconds"] = time.perf_counter() - started
    if not args.skip_ingest:
        log("ingest cost")
        ingest = ingest_cost(sources, embedder, args.ingest_tokens)
        text = ingest.pop("text")
        results["ingest"] = ingest
        if args.db:
            log("Postgres sizes")
            results["db"] = db_sizes(text, ingest["tokens"])
    (out / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    write_report(out, results)
    plot(out, results)
    log(f"done: {out}")
    print((out / "results.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
