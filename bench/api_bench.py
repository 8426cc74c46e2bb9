"""REST API benchmark: `python -m bench.api_bench --out DIR [--items 40] [--clients 50]
[--requests 20] [--web-workers 2] [--quick]`.

1. Short QA items ("full" strategy, tiny documents, a few answer tokens) answered by calling
   the engine directly in this process, then submitted as one batch through the API (uvicorn
   on loopback) to a real Celery worker: items/minute both ways and the overhead ratio.
2. API latency: N concurrent httpx clients on loopback, each sending R requests (document
   list, batch status, batch results): p50 / p99 and errors. Throttling is off for this.
3. The same latency run against the app without the request-body limit (apps.asgi's
   django_application) and with it (apps.asgi:application), alternating, ROUNDS times each,
   in the same run: the median p99 and throughput of each and their ratio (issue 16).
   `--latency-only` runs 3 alone (no model, no worker).

Runs on a database of its own (test_<name>_apibench, dropped afterwards) and its own Redis
database (TEST_REDIS_DB=12), so no other worker takes its jobs. No data path needed.
Writes results.json, results.md and api_bench.png into OUT/api.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from bench.plotting import pyplot
from workers.qa.engine import answer
from workers.qa.types import SourceDocument

ROOT = Path(__file__).resolve().parent.parent
FACTS = ["The harbour master is Ines Duarte.", "The lighthouse keeper is Oskar Brandt.",
         "The ferry captain is Lena Moreau.", "The bridge warden is Tomas Varga."]
QUESTIONS = ["Who is the harbour master?", "Who is the lighthouse keeper?",
             "Who is the ferry captain?", "Who is the bridge warden?"]
ANSWER_TOKENS = 6
WORKER_THREADS = 2  # LiveWorker's thread pool


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _setup():
    # Django models: importable only after main()'s django.setup().
    from apps.accounts.models import User
    from apps.api import keys
    from apps.documents.models import DocStatus, Document
    from apps.teams.services import create_team

    user, _ = User.objects.get_or_create(email="bench@example.invalid")
    team = create_team(f"api-bench-{time.time_ns()}", user)
    docs = [Document.objects.create(team=team, title=f"Fact {n}", original_name=f"f{n}.txt",
                                    sha256=f"{n:064d}", file=f"bench/f{n}.txt", kind="text",
                                    status=DocStatus.READY, text=fact, page_starts=[0], pages=1)
            for n, fact in enumerate(FACTS)]
    token = keys.create_key(team, user, "bench", ["read", "write"])[1]
    return team, docs, token


def _answered_batch(team, docs, n: int):
    """A finished batch of n answered items, made directly (for --latency-only)."""
    from apps.api.models import Batch, BatchItem  # after django.setup(), as in _setup

    batch = Batch.objects.create(team=team, kind="qa", total=n, succeeded=n, status="succeeded")
    BatchItem.objects.bulk_create(
        BatchItem(batch=batch, index=i, kind="qa", input=item, status="succeeded",
                  result={"answer": FACTS[i % 4].split(" is ")[1].rstrip("."), "citations": []})
        for i, item in enumerate(_items(docs, n)))
    return batch


def _items(docs, n: int) -> list[dict]:
    return [{"question": QUESTIONS[i % 4], "document_ids": [docs[i % 4].pk]} for i in range(n)]


def engine_direct(docs, n: int, threads: int) -> dict:
    """The same items answered by calling the engine in this process, `threads` at a time
    (the worker's concurrency), with no queue, rows or HTTP."""
    from concurrent.futures import ThreadPoolExecutor


    def one(i):
        d = docs[i % 4]
        return answer(QUESTIONS[i % 4], [SourceDocument(d.pk, d.title, d.text)], "full",
                      answer_tokens=ANSWER_TOKENS)

    one(0)  # loads the model
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(n)))
    seconds = time.perf_counter() - started
    return {"items": n, "threads": threads, "seconds": round(seconds, 2),
            "items_per_min": round(60 * n / seconds, 2)}


def _wait_http(url: str, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up")


def _run_batch(client, base: str, docs, n: int, timeout: float) -> dict:
    started = time.perf_counter()
    response = client.post(f"{base}/batches/", json={
        "kind": "qa", "items": _items(docs, n), "strategy": "full",
        "options": {"answer_tokens": ANSWER_TOKENS}})
    response.raise_for_status()
    batch_id = response.json()["id"]
    submitted = time.perf_counter()
    while time.perf_counter() - started < timeout:
        batch = client.get(f"{base}/batches/{batch_id}/").json()
        if batch["finished_at"]:
            break
        time.sleep(0.5)
    else:
        raise RuntimeError(f"batch {batch_id} did not finish in {timeout:.0f} s")
    seconds = time.perf_counter() - started
    return {"batch_id": batch_id, "items": n, "status": batch["status"],
            "succeeded": batch["succeeded"], "submit_seconds": round(submitted - started, 3),
            "seconds": round(seconds, 2), "items_per_min": round(60 * n / seconds, 2)}


async def _latency(base: str, token: str, batch_id: int, clients: int, requests: int) -> dict:
    import httpx

    paths = ["/documents/", f"/batches/{batch_id}/", f"/batches/{batch_id}/results/"]
    latencies: list[float] = []
    errors: dict[str, int] = {}

    async def client_loop(k: int, http) -> None:
        for r in range(requests):
            path = paths[(k + r) % len(paths)]
            began = time.perf_counter()
            try:
                response = await http.get(base + path)
                ok = response.status_code == 200
                reason = str(response.status_code)
            except httpx.HTTPError as err:
                ok, reason = False, type(err).__name__
            latencies.append(time.perf_counter() - began)
            if not ok:
                errors[reason] = errors.get(reason, 0) + 1

    limits = httpx.Limits(max_connections=clients)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=60) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(k, http) for k in range(clients)))
        seconds = time.perf_counter() - started
    total = clients * requests
    return {"clients": clients, "requests": total, "seconds": round(seconds, 2),
            "requests_per_s": round(total / seconds, 1),
            "p50_ms": round(1000 * _percentile(latencies, 0.5), 1),
            "p99_ms": round(1000 * _percentile(latencies, 0.99), 1),
            "max_ms": round(1000 * max(latencies), 1),
            "errors": sum(errors.values()), "error_kinds": errors}


def _start_server(app: str, port: int, env: dict, workers: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(workers), "--log-level", "warning"],
        env=env, cwd=ROOT, start_new_session=True)


def _stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(20)
    except subprocess.TimeoutExpired:
        server.kill()


def body_limit_comparison(env: dict, slug: str, token: str, batch_id: int, args) -> dict:
    """API latency without and with the request-body limit, alternating rounds in one run
    (load from other processes moves over minutes; alternating spreads it over both)."""
    import statistics

    apps = {"without": "apps.asgi:django_application", "with": "apps.asgi:application"}
    ports = {name: _free_port() for name in apps}
    servers = {name: _start_server(app, ports[name], env, args.web_workers)
               for name, app in apps.items()}
    runs: dict[str, list[dict]] = {name: [] for name in apps}
    try:
        for name in apps:
            _wait_http(f"http://127.0.0.1:{ports[name]}/healthz")
        for round_ in range(args.rounds):
            for name in (apps if round_ % 2 == 0 else reversed(list(apps))):
                base = f"http://127.0.0.1:{ports[name]}/api/v1/teams/{slug}"
                runs[name].append(asyncio.run(_latency(base, token, batch_id, args.clients,
                                                       args.requests)))
                print(name, runs[name][-1], flush=True)
    finally:
        for server in servers.values():
            _stop(server)
    summary = {name: {"p99_ms": statistics.median(r["p99_ms"] for r in rows),
                      "p50_ms": statistics.median(r["p50_ms"] for r in rows),
                      "requests_per_s": statistics.median(r["requests_per_s"] for r in rows),
                      "errors": sum(r["errors"] for r in rows), "runs": rows}
               for name, rows in runs.items()}
    summary["p99_ratio"] = round(summary["with"]["p99_ms"] / summary["without"]["p99_ms"], 3)
    summary["throughput_ratio"] = round(summary["with"]["requests_per_s"]
                                        / summary["without"]["requests_per_s"], 3)
    summary["rounds"] = args.rounds
    return summary


def _comparison_rows(results: dict) -> list[tuple[str, str, str]]:
    c = results.get("body_limit")
    if not c:
        return []
    return [(f"API list latency {name} the body limit ({results['web_workers']} uvicorn "
             f"workers, median of {c['rounds']} rounds)",
             f"{c[name]['requests_per_s']} GETs/s, errors {c[name]['errors']}",
             f"p50 {c[name]['p50_ms']} ms, p99 {c[name]['p99_ms']} ms")
            for name in ("without", "with")] + [
        ("body limit: with ÷ without", "", f"p99 {c['p99_ratio']}×, throughput "
                                          f"{c['throughput_ratio']}×")]


def _comparison_png(out: Path, c: dict) -> None:
    try:
        plt = pyplot()
    except ImportError:
        return
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.2))
    names = ["without", "with"]
    left.bar(names, [c[n]["p99_ms"] for n in names], color=["#777", "#37a"])
    left.set_ylabel("p99 ms")
    left.set_title("API GET p99, body limit")
    right.bar(names, [c[n]["requests_per_s"] for n in names], color=["#777", "#3a7"])
    right.set_ylabel("requests / s")
    right.set_title(f"throughput (median of {c['rounds']} rounds)")
    fig.tight_layout()
    fig.savefig(out / "body_limit.png", dpi=110)
    plt.close(fig)


def _report(out: Path, results: dict) -> None:
    if "direct" not in results:  # --latency-only
        rows = _comparison_rows(results)
        md = ["# API benchmark", "", f"`{results['command']}`", "",
              "| measure | run | result |", "|---|---|---|",
              *[f"| {a} | {b} | {c} |" for a, b, c in rows]]
        (out / "results.md").write_text("\n".join(md) + "\n")
        _comparison_png(out, results["body_limit"])
        return
    d, a, lat = results["direct"], results["api"], results["latency"]
    rows = [
        (f"engine directly ({d['threads']} threads, this process)",
         f"{d['items']} items in {d['seconds']} s (mean of runs before and after: "
         f"{' and '.join(map(str, d.get('runs_items_per_min', [])))} items/min)",
         f"{d['items_per_min']} items/min"),
        (f"API + 1 worker ({results['worker_threads']} threads)",
         f"{a['items']} items in {a['seconds']} s ({a['succeeded']} succeeded; submit "
         f"{1000 * a['submit_seconds']:.0f} ms)", f"{a['items_per_min']} items/min"),
        ("overhead ratio (direct ÷ API)", "", f"{results['overhead_ratio']}×"),
        (f"latency, {lat['clients']} concurrent clients, {results['web_workers']} uvicorn "
         "workers", f"{lat['requests']} GETs in {lat['seconds']} s "
         f"({lat['requests_per_s']}/s)",
         f"p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms, errors {lat['errors']}"),
        *_comparison_rows(results),
    ]
    md = ["# API benchmark", "", f"`{results['command']}`", "",
          "| measure | run | result |", "|---|---|---|",
          *[f"| {a} | {b} | {c} |" for a, b, c in rows], "",
          f"QA items: strategy full, {ANSWER_TOKENS} answer tokens, one-sentence documents, "
          "embedded model on this CPU; both runs at the same concurrency, so the ratio is the "
          "cost of HTTP, the queue, the rows and the polling (1.0 = none). The API rate "
          "includes submitting and polling every 0.5 s. On a shared machine, repeat runs: "
          "other load moves both figures."]
    (out / "results.md").write_text("\n".join(md) + "\n")
    try:
        plt = pyplot()

        fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
        left.bar(["direct", "API+worker"], [d["items_per_min"], a["items_per_min"]],
                 color=["#777", "#3a7"])
        left.set_ylabel("items / minute")
        left.set_title("Short QA items")
        right.bar(["p50", "p99"], [lat["p50_ms"], lat["p99_ms"]], color="#37a")
        right.set_ylabel("ms")
        right.set_title(f"{lat['clients']} concurrent clients")
        fig.tight_layout()
        fig.savefig(out / "api_bench.png", dpi=110)
        if "body_limit" in results:
            _comparison_png(out, results["body_limit"])
    except ImportError:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "var" / "bench"))
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=20, help="per client")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=4,
                        help="latency rounds without and with the body limit, alternating")
    parser.add_argument("--latency-only", action="store_true",
                        help="only the latency comparison without / with the body limit")
    parser.add_argument("--quick", action="store_true", help="--items 10 --requests 6")
    parser.add_argument("--data", help="unused: the benchmark generates its inputs")
    args = parser.parse_args()
    if args.quick:
        args.items, args.requests = min(args.items, 10), min(args.requests, 6)
    out = Path(args.out) / "api"
    out.mkdir(parents=True, exist_ok=True)
    # The test settings module gives this run its own broker database and a database of its
    # own (created, migrated and dropped here), so nothing else takes its jobs or sees its rows.
    os.environ["DJANGO_SETTINGS_MODULE"] = "apps.settings_test"
    os.environ.setdefault("TEST_REDIS_DB", "12")
    os.environ.setdefault("TEST_DB_SUFFIX", "_apibench")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import django
    from django.conf import settings

    from apps import stack

    stack.start_for(settings)  # the embedded Postgres and Redis where the settings use them
    django.setup()
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request
    from django.db import connection

    print("creating the benchmark database…", flush=True)
    database = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)

    from apps.documents.models import Document  # after django.setup() above
    from tests.live_worker import test_database_url

    team, docs, token = _setup()
    env = {**os.environ, "DATABASE_URL": test_database_url(), "REDIS_URL": settings.REDIS_URL,
           "API_THROTTLE_RATE": "", "API_ITEM_THROTTLE_RATE": "", "PYTHONUNBUFFERED": "1"}
    results: dict = {"command": " ".join(["python -m bench.api_bench", *sys.argv[1:]]),
                     "web_workers": args.web_workers, "worker_threads": WORKER_THREADS}
    try:
        if args.latency_only:
            batch_id = _answered_batch(team, docs, args.items).pk
        else:
            _run_full(results, env, team, docs, token, args)
            batch_id = results["api"]["batch_id"]
        print("latency without / with the body limit…", flush=True)
        results["body_limit"] = body_limit_comparison(env, team.slug, token, batch_id, args)
    finally:
        Document.objects.filter(team=team).delete()
        team.delete()
        connection.creation.destroy_test_db(database, verbosity=0)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    _report(out, results)
    print((out / "results.md").read_text())


def _run_full(results: dict, env: dict, team, docs, token: str, args) -> None:
    """Parts 1 and 2: engine directly vs API + worker, then latency with the app as served."""
    import httpx

    from tests.live_worker import LiveWorker

    port = _free_port()
    server = _start_server("apps.asgi:application", port, env, args.web_workers)
    worker = LiveWorker()
    try:
        print("engine directly…", flush=True)
        results["direct"] = engine_direct(docs, args.items, WORKER_THREADS)
        print(results["direct"], flush=True)
        worker.start(timeout=120)
        base = f"http://127.0.0.1:{port}/api/v1/teams/{team.slug}"
        _wait_http(f"http://127.0.0.1:{port}/healthz")
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
            print("warming the worker…", flush=True)
            _run_batch(client, base, docs, 2, timeout=300)  # model load in the worker
            print("API + worker…", flush=True)
            results["api"] = _run_batch(client, base, docs, args.items,
                                        timeout=120 + 30 * args.items)
            print(results["api"], flush=True)
        # Direct again after the API run: load from other processes moves over minutes, so
        # the ratio uses the mean of a run before and a run after.
        print("engine directly, again…", flush=True)
        again = engine_direct(docs, args.items, WORKER_THREADS)
        first = results["direct"]
        results["direct"] = {**first, "seconds": round((first["seconds"] + again["seconds"]) / 2,
                                                       2),
                             "items_per_min": round((first["items_per_min"]
                                                     + again["items_per_min"]) / 2, 2),
                             "runs_items_per_min": [first["items_per_min"],
                                                    again["items_per_min"]]}
        results["overhead_ratio"] = round(
            results["direct"]["items_per_min"] / results["api"]["items_per_min"], 2)
        worker.stop()  # the latency run measures the web tier alone
        print("latency…", flush=True)
        results["latency"] = asyncio.run(_latency(base, token, results["api"]["batch_id"],
                                                  args.clients, args.requests))
        print(results["latency"], flush=True)
    finally:
        worker.stop()
        _stop(server)

if __name__ == "__main__":
    main()
