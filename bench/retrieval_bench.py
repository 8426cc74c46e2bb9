"""LongEmbed-style retrieval benchmark and ingest throughput, on this machine's CPU.

    python -m bench.retrieval_bench --out DIR [--quick] [--data /work/shared/data/pg_essays]

Synthetic passkey and needle retrieval (LongEmbed's design): for each length, candidate
documents of that many tokens, each hiding its own fact at a random depth (passkey: in the
classic repeated "The grass is green..." filler; needle: in Paul Graham essays, or generated
prose without --data); one query per fact; nDCG@1 (one relevant document per query, so
nDCG@1 is top-1 accuracy). Compared: every dense LongEmbed strategy, lexical BM25, and
hybrid (RRF of dense and BM25). Also: ingest throughput (extract + chunk + embed) against the
raw embedder on the same chunks, chunking and embedding 1M tokens (embedding extrapolated from
a measured fraction), and a generated 500-page PDF end to end (extract + chunk). Writes
results.json, results.md and ndcg_at_1.png.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.plotting import pyplot  # noqa: E402
from workers.documents.chunking import chunk_text  # noqa: E402
from workers.documents.embeddings import Embedder, get_embedder  # noqa: E402
from workers.documents.extract import extract_document  # noqa: E402
from workers.documents.lexical import BM25Index, rrf  # noqa: E402
from workers.documents.longembed import DEFAULT_STRATEGY, embed_long  # noqa: E402
from workers.documents.pipeline import chunk_document, ingest_bytes  # noqa: E402
from workers.documents.synth import filler_text, load_essays, make_text_pdf  # noqa: E402

DEFAULT_DATA = Path("/work/shared/data/pg_essays")
FULL = {"lengths": [256, 512, 1024, 2048, 4096, 8192, 16384, 32768], "candidates": 100}
QUICK = {"lengths": [256, 512, 1024, 2048, 4096, 8192], "candidates": 20}
DENSE = ["truncate", "pcw", "pi"]

_FIRST = [
    "Ada",
    "Boris",
    "Chen",
    "Dana",
    "Emil",
    "Fatima",
    "Goran",
    "Hana",
    "Ivo",
    "Jun",
    "Kofi",
    "Lena",
    "Mateo",
    "Nia",
    "Omar",
    "Pia",
]
_LAST = [
    "Abe",
    "Berg",
    "Cruz",
    "Diaz",
    "Egan",
    "Falk",
    "Grey",
    "Holt",
    "Ito",
    "Jha",
    "Kahn",
    "Lund",
    "Moss",
    "Nagy",
    "Ortiz",
    "Park",
]
_DISHES = ["soup", "stew", "curry", "pie", "salad", "risotto", "tart", "chili"]
_INGREDIENTS = [
    "saffron",
    "cardamom",
    "tamarind",
    "sumac",
    "fennel",
    "juniper",
    "miso",
    "lemongrass",
    "anise",
    "paprika",
    "nutmeg",
    "wasabi",
    "chipotle",
    "turmeric",
    "vanilla",
]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass
class Case:
    docs: list[str]
    queries: list[str]  # queries[i] is answered by docs[i]


def _names(n: int, rng: random.Random) -> list[str]:
    pairs = [f"{f} {last}" for f in _FIRST for last in _LAST]
    return rng.sample(pairs, n)


_PASSKEY_FILLER = (
    "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. "
)


def _haystack(embedder: Embedder, tokens: int, rng: random.Random, essays: list[str]) -> str:
    """Filler of exactly ``tokens`` tokens (cut by the tokenizer's offsets): essays if given,
    else the passkey filler repeated."""
    if essays:
        text = filler_text(tokens * 7 + 200, rng, essays)
    else:
        text = _PASSKEY_FILLER * (tokens // 20 + 2)
    enc = embedder.tokenizer(
        text, add_special_tokens=False, return_offsets_mapping=True, verbose=False
    )
    offsets = enc["offset_mapping"]
    return text[: offsets[min(tokens, len(offsets)) - 1][1]]


def _insert(haystack: str, needle: str, rng: random.Random) -> str:
    """Put the needle at a random depth, on a sentence boundary."""
    at = rng.randrange(len(haystack) + 1)
    cut = haystack.rfind(". ", 0, at)
    cut = 0 if cut == -1 else cut + 2
    return f"{haystack[:cut]}{needle} {haystack[cut:]}"


def make_case(
    task: str, length: int, n: int, embedder: Embedder, rng: random.Random, essays: list[str]
) -> Case:
    names = _names(n, rng)
    docs, queries = [], []
    for i, name in enumerate(names):
        if task == "passkey":
            key = rng.randint(10_000, 99_999)
            needle = f"{name}'s pass key is {key}. Remember it. {key} is the pass key of {name}."
            query = f"What is the pass key of {name}?"
        else:
            dish, spice = _DISHES[i % len(_DISHES)], rng.choice(_INGREDIENTS)
            needle = f"The secret ingredient in {name}'s {dish} is {spice}, added at the very end."
            query = f"What is the secret ingredient in {name}'s {dish}?"
        budget = max(length - embedder.count_tokens(needle), 16)
        # As in LongEmbed: passkey hides the key in the classic repeated filler, so candidates
        # differ only by their key; the needle task hides its fact in essays.
        hay = _haystack(embedder, budget, rng, [] if task == "passkey" else essays)
        docs.append(_insert(hay, needle, rng))
        queries.append(query)
    return Case(docs, queries)


def top1(scores: np.ndarray) -> float:
    return float((np.argmax(scores, axis=1) == np.arange(scores.shape[0])).mean())


def evaluate(case: Case, embedder: Embedder, strategies: list[str]) -> dict[str, float]:
    q = embedder.embed(case.queries)
    out: dict[str, float] = {}
    dense_rankings: dict[str, list[list[int]]] = {}
    for name in strategies:
        start = time.perf_counter()
        vectors = embed_long(embedder, case.docs, name)
        scores = q @ vectors.T
        out[name] = top1(scores)
        out[f"{name}_seconds"] = time.perf_counter() - start
        dense_rankings[name] = [list(np.argsort(-row)) for row in scores]
    index = BM25Index(case.docs)
    lexical = [[i for i, _ in index.search(query, k=len(case.docs))] for query in case.queries]
    out["lexical"] = float(np.mean([bool(r) and r[0] == i for i, r in enumerate(lexical)]))
    best = DEFAULT_STRATEGY if DEFAULT_STRATEGY in dense_rankings else strategies[0]
    hybrid = [rrf([dense_rankings[best][i], lexical[i]])[0][0] for i in range(len(case.queries))]
    out["hybrid"] = float(np.mean([h == i for i, h in enumerate(hybrid)]))
    return out


def estimate_seconds(args: argparse.Namespace, embedder: Embedder) -> float:
    """Time a few 512-token windows, then scale by the tokens each strategy will embed."""
    window = [list(range(2000, 2510))] * 8
    embedder.embed_ids(window[:2])  # warm-up
    start = time.perf_counter()
    embedder.embed_ids(window)
    per_token = (time.perf_counter() - start) / (8 * 512)
    per_task = 0.0
    for length in args.lengths:
        cost = {"truncate": min(length, 512), "pcw": length}
        # pi attends over up to 4k positions at once: quadratic, ~1.5x pcw at 4k here.
        cost["pi"] = min(length, 4096) * (1 + min(length, 4096) / 8192)
        per_task += sum(cost.get(s, length) for s in args.strategies) * args.candidates
    return 2 * per_task * per_token


def retrieval(args: argparse.Namespace, embedder: Embedder, essays: list[str]) -> list[dict]:
    rows = []
    for task in ("passkey", "needle"):
        for length in args.lengths:
            rng = random.Random(f"{task}-{length}")
            case = make_case(task, length, args.candidates, embedder, rng, essays)
            result = evaluate(case, embedder, args.strategies)
            rows.append({"task": task, "length": length, **result})
            dense = " ".join(f"{s}={result[s]:.2f}" for s in args.strategies)
            log(
                f"{task} {length}: {dense} lexical={result['lexical']:.2f} "
                f"hybrid={result['hybrid']:.2f}"
            )
    return rows


def ingest_throughput(embedder: Embedder, essays: list[str], repeats: int = 3) -> dict:
    """Pipeline (extract + chunk + embed) vs the raw embedder on the very same chunks.

    The two are interleaved and the best of ``repeats`` kept: the CPU is shared, and other
    work only ever adds time. The extract and chunk stages are also timed on their own.
    """
    text = filler_text(80_000, random.Random("ingest"), essays)
    data = ("# Report\n\n" + text).encode()
    embedder.embed(["warm up the model"] * 4)
    timings: dict[str, list[float]] = {"pipeline": [], "raw": [], "extract": [], "chunk": []}
    for _ in range(repeats):
        start = time.perf_counter()
        result = ingest_bytes(data, embedder)
        timings["pipeline"].append(time.perf_counter() - start)
        texts = [c.text for c in result.chunks]
        start = time.perf_counter()
        embedder.embed(texts)
        timings["raw"].append(time.perf_counter() - start)
        start = time.perf_counter()
        document = extract_document(data)
        timings["extract"].append(time.perf_counter() - start)
        start = time.perf_counter()
        chunk_document(document, embedder.count_tokens, 254)
        timings["chunk"].append(time.perf_counter() - start)
    tokens = sum(c.tokens for c in result.chunks)
    best = {k: min(v) for k, v in timings.items()}
    return {
        "chunks": len(result.chunks),
        "tokens": tokens,
        "pipeline_seconds": best["pipeline"],
        "raw_embed_seconds": best["raw"],
        "extract_seconds": best["extract"],
        "chunk_seconds": best["chunk"],
        "pipeline_tokens_per_s": tokens / best["pipeline"],
        "raw_tokens_per_s": tokens / best["raw"],
        "ratio": best["raw"] / best["pipeline"],
        # The ratio without contention: the extra stages against the embedding alone.
        "stage_ratio": best["raw"] / (best["raw"] + best["extract"] + best["chunk"]),
        "all_timings": timings,
    }


def million_tokens(embedder: Embedder, essays: list[str], embed_fraction: float) -> dict:
    """Chunk 1M tokens fully; embed a measured fraction and extrapolate (said so in the output)."""
    rng = random.Random("million")
    parts, tokens = [], 0
    while tokens < 1_000_000:
        part = filler_text(200_000, rng, essays)
        parts.append(part)
        tokens += embedder.count_tokens(part)
    text = "\n\n".join(parts)
    tracemalloc.start()
    start = time.perf_counter()
    chunks = chunk_text(text, embedder.count_tokens, 254)
    chunk_seconds = time.perf_counter() - start
    _, chunk_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    total_tokens = sum(c.tokens for c in chunks)
    sample = chunks[: max(1, int(len(chunks) * embed_fraction))]
    start = time.perf_counter()
    vectors = embedder.embed([c.text for c in sample])
    sample_seconds = time.perf_counter() - start
    sample_tokens = sum(c.tokens for c in sample)
    embed_seconds = sample_seconds * total_tokens / sample_tokens
    return {
        "text_chars": len(text),
        "tokens": total_tokens,
        "chunks": len(chunks),
        "chunk_seconds": chunk_seconds,
        "chunk_python_peak_mb": chunk_peak / 2**20,
        "embedded_fraction": len(sample) / len(chunks),
        "embed_sample_seconds": sample_seconds,
        "embed_seconds_extrapolated": embed_seconds,
        "total_seconds_extrapolated": chunk_seconds + embed_seconds,
        "vectors_mb_full": len(chunks) * vectors.shape[1] * 4 / 2**20,
        "process_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def big_pdf(embedder: Embedder, essays: list[str], pages: int = 500) -> dict:
    rng = random.Random("pdf")
    data = make_text_pdf([filler_text(2_400, rng, essays) for _ in range(pages)], title="Big")
    start = time.perf_counter()
    doc = extract_document(data)
    extract_seconds = time.perf_counter() - start
    start = time.perf_counter()
    chunks = chunk_text(doc.text, embedder.count_tokens, 254)
    chunk_seconds = time.perf_counter() - start
    return {
        "pdf_mb": len(data) / 2**20,
        "pages": doc.stats.pages,
        "words": doc.stats.words,
        "chunks": len(chunks),
        "extract_seconds": extract_seconds,
        "chunk_seconds": chunk_seconds,
    }


def write_report(out: Path, results: dict) -> None:
    lines: list[str] = []
    if "retrieval" in results:
        rows = results["retrieval"]
        cols = [*results["config"]["strategies"], "lexical", "hybrid"]
        lines += [
            "| task | tokens | " + " | ".join(cols) + " |",
            "|---|---:|" + "---:|" * len(cols),
        ]
        for r in rows:
            cells = " | ".join(f"{r[c]:.2f}" for c in cols)
            lines.append(f"| {r['task']} | {r['length']} | {cells} |")
        for task in ("passkey", "needle"):
            sel = [r for r in rows if r["task"] == task]
            means = " | ".join(f"{np.mean([r[c] for r in sel]):.2f}" for c in cols)
            lines.append(f"| {task} | mean | {means} |")
        lines += ["", f"Dense winner (mean nDCG@1 over both tasks): **{results['winner']}**"]
    if "ingest" in results:
        ing, mil, pdf = results["ingest"], results["million"], results["pdf"]
        lines += [
            "",
            f"Ingest: {ing['tokens']} tokens in {ing['chunks']} chunks; pipeline "
            f"{ing['pipeline_tokens_per_s']:.0f} tok/s vs raw embedder "
            f"{ing['raw_tokens_per_s']:.0f} tok/s: ratio **{ing['ratio']:.2f}** (best of 3, "
            f"interleaved); extract {ing['extract_seconds']:.2f} s + chunk "
            f"{ing['chunk_seconds']:.2f} s against embed {ing['raw_embed_seconds']:.2f} s: "
            f"stage ratio **{ing['stage_ratio']:.2f}**",
            "",
            f"1M tokens ({mil['tokens']} tokens, {mil['chunks']} chunks): chunking "
            f"{mil['chunk_seconds']:.1f} s (Python heap peak {mil['chunk_python_peak_mb']:.0f} MB);"
            f" embedding measured on {mil['embedded_fraction']:.1%} of the chunks "
            f"({mil['embed_sample_seconds']:.1f} s) and extrapolated to "
            f"{mil['embed_seconds_extrapolated']:.0f} s; "
            f"total ≈ {mil['total_seconds_extrapolated']:.0f} s; "
            f"process peak RSS {mil['process_peak_rss_mb']:.0f} MB",
            "",
            f"500-page PDF ({pdf['pdf_mb']:.1f} MB, {pdf['words']} words): extract "
            f"{pdf['extract_seconds']:.2f} s, chunk {pdf['chunk_seconds']:.2f} s "
            f"({pdf['chunks']} chunks)",
        ]
    (out / "results.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def plot(out: Path, results: dict) -> None:
    plt = pyplot()

    cols = [*results["config"]["strategies"], "lexical", "hybrid"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, task in zip(axes, ("passkey", "needle"), strict=True):
        sel = [r for r in results["retrieval"] if r["task"] == task]
        for c in cols:
            ax.plot([r["length"] for r in sel], [r[c] for r in sel], marker="o", label=c)
        ax.set_xscale("log", base=2)
        ax.set_title(f"{task} (all-MiniLM-L6-v2, {results['config']['candidates']} candidates)")
        ax.set_xlabel("document tokens")
        ax.set_ylim(-0.05, 1.05)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("nDCG@1")
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(out / "ndcg_at_1.png", dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true", help="6 lengths to 8k, 20 candidates")
    parser.add_argument("--data", type=Path, default=None, help="folder of essay .txt files")
    parser.add_argument("--lengths", type=int, nargs="*", default=None)
    parser.add_argument("--candidates", type=int, default=None)
    parser.add_argument("--strategies", nargs="*", default=DENSE)
    parser.add_argument("--model", default=None, help="sentence-transformers model path")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-retrieval", action="store_true")
    args = parser.parse_args(argv)
    preset = QUICK if args.quick else FULL
    args.lengths = args.lengths or preset["lengths"]
    args.candidates = args.candidates or preset["candidates"]
    data = args.data or (DEFAULT_DATA if DEFAULT_DATA.exists() else None)
    essays = load_essays(data)
    args.out.mkdir(parents=True, exist_ok=True)
    embedder = get_embedder(args.model)
    log(
        f"model {embedder.model_path}; filler: {data if essays else 'generated'}; "
        f"lengths {args.lengths}; {args.candidates} candidates = queries per length"
    )
    results: dict = {
        "config": {
            "lengths": args.lengths,
            "candidates": args.candidates,
            "queries": args.candidates,
            "strategies": args.strategies,
            "filler": str(data) if essays else "generated",
            "cpu_threads": __import__("torch").get_num_threads(),
        }
    }
    if not args.skip_retrieval:
        results["estimate_seconds"] = estimate_seconds(args, embedder)
        log(f"estimated retrieval time: {results['estimate_seconds'] / 60:.0f} min")
        start = time.perf_counter()
        results["retrieval"] = retrieval(args, embedder, essays)
        results["retrieval_seconds"] = time.perf_counter() - start
        means = {s: float(np.mean([r[s] for r in results["retrieval"]])) for s in args.strategies}
        results["dense_means"] = means
        results["winner"] = max(means, key=means.get)
    if not args.skip_throughput:
        log("ingest throughput")
        results["ingest"] = ingest_throughput(embedder, essays)
        log(f"ratio {results['ingest']['ratio']:.2f}; 1M tokens")
        results["million"] = million_tokens(embedder, essays, 0.02 if args.quick else 0.1)
        log("500-page PDF")
        results["pdf"] = big_pdf(embedder, essays)
    (args.out / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    write_report(args.out, results)
    if "retrieval" in results:
        plot(args.out, results)
    log(f"done: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
