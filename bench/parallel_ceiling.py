"""The parallel reader against the server's own limit: the app's path vs a plain client.

    python -m bench.parallel_ceiling --out DIR [--lengths 32000 128000] [--kind needle]
                                     [--rounds 2] [--data ../shared/data]

Needs an OpenAI-compatible server (``LLM_BACKEND=vllm LLM_BASE_URL=...``), best started
without prefix caching so that a replay of the same prompts is not served from the cache:
``bash scripts/vllm/serve.sh PORT --no-enable-prefix-caching``.

For each length, a haystack question is answered by ``mapreduce`` through the engine (the
app's path: chunking, the map calls bounded by ``LLM_CONCURRENCY``, notes, collapse,
reduce), recording every request it sends. A plain client (httpx, no engine) then sends the
same requests to the same server, all at once. Tokens/s = (prompt + completion tokens, as
the server counts them) / wall time, for the map stage (the bulk of the work: requests
that do not depend on each other) and for the whole job (whose collapse and reduce wait
for the map; the plain client sends them with the map, so it is an upper bound no
pipeline can reach). The two paths are alternated ``--rounds`` times; medians.
Goal (issue 19): the app's map stage ≥ 0.9x the plain client's tokens/s. Writes
DIR/parallel_ceiling.md, .json and .png.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import describe_machine, machine_line  # noqa: E402
from bench.plotting import bar_panel, pyplot  # noqa: E402
from workers.llm import get_backend  # noqa: E402
from workers.qa import SourceDocument, answer, build_haystack  # noqa: E402

GOAL = 0.9
DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


class Recorder:
    """The backend, with every chat request it is asked for written down (in order)."""

    def __init__(self, backend: Any) -> None:
        self._backend = backend
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def _record(self, messages: Any, sampling: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append({"messages": messages, "sampling": sampling})

    def chat(self, messages: Any, **sampling: Any) -> Any:
        self._record(messages, sampling)
        return self._backend.chat(messages, **sampling)

    def stream(self, messages: Any, **sampling: Any) -> Any:
        self._record(messages, sampling)
        return self._backend.stream(messages, **sampling)


def app_run(backend: Any, question: str, docs: list[SourceDocument]) -> dict[str, Any]:
    recorder = Recorder(backend)
    began = time.perf_counter()
    result = answer(question, docs, "mapreduce", backend=recorder, answer_tokens=64)
    seconds = time.perf_counter() - began
    steps = {s.name: s for s in result.trace}
    chunks = steps["chunk"].notes["chunks"]
    return {
        "answer": result.text,
        "seconds": seconds,
        "map_seconds": steps["map"].seconds,
        "chunks": chunks,
        "requests": recorder.requests,
        "map_requests": recorder.requests[:chunks],
        "prompt_tokens": result.usage.prompt_tokens,
        "completion_tokens": result.usage.completion_tokens,
    }


async def _plain(url: str, model: str, requests: list[dict[str, Any]]) -> dict[str, Any]:
    """Every request at once, straight to the server; tokens as the server counts them."""
    import httpx

    async with httpx.AsyncClient(timeout=3600, limits=httpx.Limits(max_connections=None)) as client:

        async def one(req: dict[str, Any]) -> dict[str, Any]:
            s = req["sampling"]
            body = {
                "model": model,
                "messages": req["messages"],
                "max_tokens": s["max_tokens"],
                "temperature": s.get("temperature", 0.0),
            }
            response = await client.post(f"{url}/chat/completions", json=body)
            response.raise_for_status()
            return response.json()["usage"]

        began = time.perf_counter()
        usages = await asyncio.gather(*(one(r) for r in requests))
        seconds = time.perf_counter() - began
    return {
        "seconds": seconds,
        "prompt_tokens": sum(u["prompt_tokens"] for u in usages),
        "completion_tokens": sum(u["completion_tokens"] for u in usages),
    }


def plain_run(backend: Any, requests: list[dict[str, Any]]) -> dict[str, Any]:
    return asyncio.run(_plain(backend.api_url, backend.model, requests))


def _rate(tokens: int, seconds: float) -> float:
    return tokens / seconds if seconds else 0.0


def measure(
    backend: Any, length: int, kind: str, rounds: int, data: Path, seed: int
) -> dict[str, Any]:
    haystack = build_haystack(
        length,
        kind=kind,
        seed=random.Random(seed).randrange(1 << 30),
        essays_dir=data / "pg_essays",
        count_tokens=backend.count_tokens,
    )
    docs = [SourceDocument(id=1, title="haystack", text=haystack.text)]
    rows: dict[str, list[dict[str, float]]] = {
        k: [] for k in ("app_map", "plain_map", "app_job", "plain_job")
    }
    answers = []
    for _ in range(rounds):
        app = app_run(backend, haystack.question, docs)
        answers.append(haystack.is_correct(app["answer"]))
        # The map stage's tokens as the server counted them: replayed alone, the same
        # prompts give the same counts, so the plain run's totals stand for both paths.
        plain_map = plain_run(backend, app["map_requests"])
        map_tokens = plain_map["prompt_tokens"] + plain_map["completion_tokens"]
        rows["app_map"].append(
            {"seconds": app["map_seconds"], "tokens_per_s": _rate(map_tokens, app["map_seconds"])}
        )
        rows["plain_map"].append(
            {
                "seconds": plain_map["seconds"],
                "tokens_per_s": _rate(map_tokens, plain_map["seconds"]),
            }
        )
        job_tokens = app["prompt_tokens"] + app["completion_tokens"]
        plain_job = plain_run(backend, app["requests"])
        rows["app_job"].append(
            {"seconds": app["seconds"], "tokens_per_s": _rate(job_tokens, app["seconds"])}
        )
        rows["plain_job"].append(
            {
                "seconds": plain_job["seconds"],
                "tokens_per_s": _rate(
                    plain_job["prompt_tokens"] + plain_job["completion_tokens"],
                    plain_job["seconds"],
                ),
            }
        )
    medians = {
        k: {m: round(statistics.median(r[m] for r in v), 2) for m in ("seconds", "tokens_per_s")}
        for k, v in rows.items()
    }
    return {
        "length": length,
        "kind": kind,
        "chunks": app["chunks"],
        "requests": len(app["requests"]),
        "right": answers,
        "rounds": rows,
        "medians": medians,
        "map_ratio": round(
            medians["app_map"]["tokens_per_s"] / medians["plain_map"]["tokens_per_s"], 3
        ),
        "job_ratio": round(
            medians["app_job"]["tokens_per_s"] / medians["plain_job"]["tokens_per_s"], 3
        ),
    }


def report(results: dict[str, Any], out: Path) -> None:
    lines = [
        "# The parallel reader (mapreduce) against a plain client, same server, same prompts",
        "",
        machine_line(results["machine"]),
        "",
        f"Server {results['server']}, `LLM_CONCURRENCY` {results['concurrency']}; load "
        f"average before/after {results['load_average']['before']} / "
        f"{results['load_average']['after']}; medians of {results['rounds']} alternated "
        "rounds.",
        "",
        "| length | chunks | requests | stage | app s | plain s | app tok/s | plain tok/s | "
        "app ÷ plain |",
        "|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in results["runs"]:
        m = r["medians"]
        for stage, ratio in (("map", r["map_ratio"]), ("job", r["job_ratio"])):
            a, p = m[f"app_{stage}"], m[f"plain_{stage}"]
            lines.append(
                f"| {r['length']} | {r['chunks']} | {r['requests']} | {stage} | "
                f"{a['seconds']} | {p['seconds']} | {a['tokens_per_s']} | "
                f"{p['tokens_per_s']} | {ratio} |"
            )
    lines += [
        "",
        f"Goal: the map stage ≥ {GOAL}x the plain client's tokens/s. The job row's "
        "plain client sends the collapse and reduce prompts with the map ones, which no "
        "reader can (they need the map's notes): an upper bound.",
    ]
    (out / "parallel_ceiling.md").write_text("\n".join(lines) + "\n")
    (out / "parallel_ceiling.json").write_text(json.dumps(results, indent=2))
    plt = pyplot()
    runs = results["runs"]
    fig, axes = plt.subplots(1, len(runs), figsize=(4.5 * len(runs), 3.5), squeeze=False)
    for ax, r in zip(axes[0], runs, strict=True):
        m = r["medians"]
        bar_panel(
            ax,
            ["app map", "plain map", "app job", "plain job"],
            [m[k]["tokens_per_s"] for k in ("app_map", "plain_map", "app_job", "plain_job")],
            f"tokens/s at {r['length']} tokens",
            goal=m["plain_map"]["tokens_per_s"] * GOAL,
        )
    fig.tight_layout()
    fig.savefig(out / "parallel_ceiling.png", dpi=100)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--lengths", nargs="+", type=int, default=[32000, 128000])
    parser.add_argument("--kind", default="needle", choices=["needle", "passkey"])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    backend = get_backend()
    if not hasattr(backend, "api_url"):
        parser.error("needs a model server: LLM_BACKEND=vllm LLM_BASE_URL=http://HOST:PORT/v1")
    args.out.mkdir(parents=True, exist_ok=True)
    backend.chat("Hi", max_tokens=2)  # discovers the model name and window
    load_before = os.getloadavg()
    runs = []
    for length in args.lengths:
        runs.append(measure(backend, length, args.kind, args.rounds, args.data, args.seed))
        print(json.dumps({k: v for k, v in runs[-1].items() if k != "rounds"}), flush=True)
    results = {
        "machine": describe_machine(backend.name),
        "server": backend.api_url,
        "concurrency": backend.concurrency,
        "rounds": args.rounds,
        "runs": runs,
        "load_average": {
            "before": [round(x, 2) for x in load_before],
            "after": [round(x, 2) for x in os.getloadavg()],
        },
    }
    report(results, args.out)
    print(f"written: {args.out / 'parallel_ceiling.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
