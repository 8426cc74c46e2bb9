"""Web tier benchmark: `python -m bench.web_bench --out DIR [--connections 50]
[--duration 10] [--root LABEL=CHECKOUT ...] [--rounds 1] [--tool auto|wrk|autocannon|python]`.

Serves the app as `make run` does (`manage.py serve --no-worker`: its web processes, its
settings) on a loopback port and drives, with N connections, /healthz and the API document
list (a team with DOCUMENTS documents, authenticated with an API key; throttling off through
API_THROTTLE_RATE="" for the measurement): requests/s, p50, p99 and errors of each. The load
comes from `wrk` when it is installed, else from `autocannon` (Node; installed on first use
with `npm install --prefix var/tools autocannon` when npm is there), else from an
asyncio/httpx client in this process, which takes much of a small machine's CPU from the
server it measures (the report names which). A warm-up run at the same concurrency precedes
each measured one.

`--root LABEL=PATH` (repeatable) serves other checkouts with the same database, load and
machine, in alternating order per round, for a before/after in one run, e.g.
`git worktree add /tmp/before <commit>` then
`python -m bench web --root before=/tmp/before --root after=.`; the report gives each
figure's ratio to the first root. Default: this checkout alone.

Runs on a database of its own (test_<name>_webbench, created, migrated and dropped here) and
Redis database 12. Writes results.json, results.md and web_bench.png into OUT/web.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.api_bench import _free_port, _percentile, _wait_http
from bench.machine import describe_machine, machine_lines
from bench.plotting import pyplot

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "var" / "tools"  # npm's prefix for autocannon (var/ is not in git)
DOCUMENTS = 20  # one page of the list (the API's page size is larger)
REQUEST_TIMEOUT_S = 10  # a request slower than this counts as an error (wrk's default: 2 s)


def _setup():
    from apps.accounts.models import User
    from apps.api import keys
    from apps.documents.models import DocStatus, Document
    from apps.teams.services import create_team

    user, _ = User.objects.get_or_create(email="web-bench@example.invalid")
    team = create_team(f"web-bench-{time.time_ns()}", user)
    Document.objects.bulk_create(
        Document(team=team, title=f"Document {n}", original_name=f"d{n}.txt", sha256=f"{n:064d}",
                 file=f"bench/d{n}.txt", kind="text", status=DocStatus.READY,
                 text=f"Text of document {n}.", page_starts=[0], pages=1)
        for n in range(DOCUMENTS))
    return team, keys.create_key(team, user, "web-bench", ["read"])[1]


# -- load generators --------------------------------------------------------------------------

_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * _UNIT_MS[unit]


def parse_wrk(output: str) -> dict:
    """requests/s, p50, p99 and errors (socket errors and non-2xx/3xx answers) from wrk's
    --latency output."""
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", output, re.M))
    requests = re.search(r"(\d+) requests in ([\d.]+)(\w+),", output)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                              r"timeout (\d+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = (sum(map(int, socket_errors.groups())) if socket_errors else 0) + \
        (int(non_2xx.group(1)) if non_2xx else 0)
    return {"requests": int(requests.group(1)),
            "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
            "p50_ms": round(_ms(percentiles["50"]), 1), "p99_ms": round(_ms(percentiles["99"]), 1),
            "errors": errors}


def run_wrk(url: str, headers: dict, connections: int, seconds: float) -> dict:
    threads = min(connections, len(os.sched_getaffinity(0)))
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s",
               f"--timeout={REQUEST_TIMEOUT_S}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    try:
        return parse_wrk(output)
    except (AttributeError, KeyError) as err:
        raise RuntimeError(f"unexpected wrk output:\n{output}") from err


def parse_autocannon(output: str) -> dict:
    """requests/s, p50, p99 and errors (connection errors and timeouts, and non-2xx answers)
    from autocannon's --json report."""
    report = json.loads(output)
    return {"requests": report["requests"]["total"],
            "requests_per_s": round(report["requests"]["total"] / report["duration"], 1),
            "p50_ms": float(report["latency"]["p50"]), "p99_ms": float(report["latency"]["p99"]),
            "errors": report["errors"] + report["non2xx"]}  # errors counts the timeouts


def autocannon_path(install: bool = True) -> str | None:
    """autocannon under var/tools, installed there with npm on first use; None without
    either (then the Python client measures)."""
    binary = TOOLS / "node_modules" / ".bin" / "autocannon"
    if not binary.exists() and install and shutil.which("npm"):
        print("installing autocannon into var/tools (npm)…", flush=True)
        subprocess.run(["npm", "install", "--prefix", str(TOOLS), "--no-audit", "--no-fund",
                        "autocannon"], check=False, capture_output=True, timeout=300)
    return str(binary) if binary.exists() else None


def run_autocannon(url: str, headers: dict, connections: int, seconds: float) -> dict:
    command = [autocannon_path(), "--json", "--no-progress", "-c", str(connections),
               "-d", f"{seconds:g}", "-t", str(REQUEST_TIMEOUT_S)]
    for name, value in headers.items():
        command += ["-H", f"{name}={value}"]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    try:
        return parse_autocannon(output)
    except (ValueError, KeyError, ZeroDivisionError) as err:
        raise RuntimeError(f"unexpected autocannon output:\n{output}") from err


async def _python_load(url: str, headers: dict, connections: int, seconds: float) -> dict:
    import httpx

    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def loop(http) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            try:
                ok = (await http.get(url)).status_code < 400
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - began)
            errors += not ok

    limits = httpx.Limits(max_connections=connections)
    async with httpx.AsyncClient(headers=headers, limits=limits,
                                 timeout=REQUEST_TIMEOUT_S) as http:
        started = time.perf_counter()
        await asyncio.gather(*(loop(http) for _ in range(connections)))
        elapsed = time.perf_counter() - started
    return {"requests": len(latencies), "requests_per_s": round(len(latencies) / elapsed, 1),
            "p50_ms": round(1000 * _percentile(latencies, 0.5), 1),
            "p99_ms": round(1000 * _percentile(latencies, 0.99), 1), "errors": errors}


def run_python(url: str, headers: dict, connections: int, seconds: float) -> dict:
    return asyncio.run(_python_load(url, headers, connections, seconds))


LOADERS = {"wrk": run_wrk, "autocannon": run_autocannon, "python": run_python}


def pick_tool() -> str:
    """wrk, else autocannon, else the Python client: the first that is (or can be) here."""
    if shutil.which("wrk"):
        return "wrk"
    return "autocannon" if autocannon_path() else "python"


# -- the server -------------------------------------------------------------------------------


def _serve(root: Path, port: int, env: dict, log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--no-worker", "--host", "127.0.0.1",
             "--port", str(port)], cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        _wait_http(f"http://127.0.0.1:{port}/healthz", timeout=180)
    except RuntimeError:
        _stop(server)
        raise RuntimeError(f"{root}: the server did not come up:\n{log.read_text()[-3000:]}") \
            from None
    return server


def _stop(server: subprocess.Popen) -> None:
    """SIGINT to serve (its Ctrl-C: it stops its web processes), the whole group past 30 s."""
    if server.poll() is None:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)


def _server_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of serve and its web processes so far."""
    import psutil

    parent = psutil.Process(pid)
    total = 0.0
    for proc in (parent, *parent.children(recursive=True)):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def measure_root(label: str, root: Path, env: dict, targets: dict, args, out: Path) -> dict:
    port = _free_port()
    server = _serve(root, port, {**env, "PORT": str(port)}, out / f"serve-{label}.log")
    load = LOADERS[args.tool]
    try:
        runs = {}
        for name, (path, headers) in targets.items():
            url = f"http://127.0.0.1:{port}{path}"
            load(url, headers, args.connections, args.warmup)
            cpu = _server_cpu_seconds(server.pid)
            runs[name] = load(url, headers, args.connections, args.duration)
            # The servers' CPU per answered request: what a request costs, which a machine
            # shared with other work changes far less than requests/s.
            runs[name]["cpu_ms_per_request"] = round(
                1000 * (_server_cpu_seconds(server.pid) - cpu) / max(1, runs[name]["requests"]),
                2)
            print(f"  {label} {name}: {runs[name]}", flush=True)
        return runs
    finally:
        _stop(server)


# -- report -----------------------------------------------------------------------------------


def _summary(rows: list[dict]) -> dict:
    """The median of each figure over the rounds, errors summed."""
    return {"requests_per_s": statistics.median(r["requests_per_s"] for r in rows),
            "p50_ms": statistics.median(r["p50_ms"] for r in rows),
            "p99_ms": statistics.median(r["p99_ms"] for r in rows),
            "cpu_ms_per_request": statistics.median(r.get("cpu_ms_per_request", 0) for r in rows),
            "errors": sum(r["errors"] for r in rows), "rounds": rows}


def _report(out: Path, results: dict) -> None:
    labels, summary = results["labels"], results["summary"]
    first = labels[0]
    md = ["# Web tier benchmark", "", f"`{results['command']}`", "",
          f"{results['connections']} connections on loopback, {results['duration']} s per run "
          f"after a {results['warmup']} s warm-up, {results['rounds']} round(s) (medians), load "
          f"from {results['tool']}; the server as `manage.py serve` runs it. /healthz; the API "
          f"document list ({DOCUMENTS} documents, API key, throttling off).", "",
          *machine_lines(results),
          f"Load average (1 min) at the start and the end: {results['load_average']['start']}, "
          f"{results['load_average']['end']}.", "",
          "| checkout | endpoint | requests/s | p50 ms | p99 ms | errors | server CPU ms/request |"
          + (f" requests/s vs {first} | p99 vs {first} | CPU/request vs {first} |"
             if len(labels) > 1 else ""),
          "|---|---|---|---|---|---|---|" + ("---|---|---|" if len(labels) > 1 else "")]
    for label in labels:
        for name, s in summary[label].items():
            row = (f"| {label} | {name} | {s['requests_per_s']:.0f} | {s['p50_ms']:.1f} | "
                   f"{s['p99_ms']:.1f} | {s['errors']} | {s['cpu_ms_per_request']:.2f} |")
            if len(labels) > 1:
                base = summary[first][name]
                row += (f" {s['requests_per_s'] / base['requests_per_s']:.2f}× | "
                        f"{s['p99_ms'] / base['p99_ms']:.2f}× | "
                        f"{s['cpu_ms_per_request'] / max(base['cpu_ms_per_request'], 1e-9):.2f}× |")
            md.append(row)
    md += ["", "Roots: " + ", ".join(f"{label} = `{path}`"
                                     for label, path in results["roots"].items())]
    (out / "results.md").write_text("\n".join(md) + "\n")
    try:
        plt = pyplot()
    except ImportError:
        return
    names = list(summary[first])
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    width = 0.8 / len(labels)
    for i, label in enumerate(labels):
        xs = [n + i * width for n in range(len(names))]
        left.bar(xs, [summary[label][n]["requests_per_s"] for n in names], width, label=label)
        right.bar(xs, [summary[label][n]["p99_ms"] for n in names], width, label=label)
    for axis, title in ((left, "requests / s"), (right, "p99 latency, ms")):
        axis.set_xticks([n + width * (len(labels) - 1) / 2 for n in range(len(names))], names)
        axis.set_title(f"{title} ({results['connections']} connections)")
        axis.legend()
    fig.tight_layout()
    fig.savefig(out / "web_bench.png", dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "var" / "bench"))
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before each run")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--root", action="append", default=[], metavar="LABEL=PATH",
                        help="a checkout to serve (repeatable); default: this one")
    parser.add_argument("--tool", choices=["auto", *LOADERS], default="auto")
    parser.add_argument("--web-workers", type=int,
                        help="web processes (WEB_WORKERS); default: what serve picks")
    parser.add_argument("--data", help="unused: the benchmark makes its own rows")
    args = parser.parse_args()
    if args.tool == "auto":
        args.tool = pick_tool()
    elif args.tool == "autocannon" and not autocannon_path():
        parser.error("autocannon is not installed and npm could not install it")
    roots = dict(r.split("=", 1) for r in args.root) if args.root else {"this": str(ROOT)}
    roots = {label: str(Path(path).resolve()) for label, path in roots.items()}
    out = Path(args.out) / "web"
    out.mkdir(parents=True, exist_ok=True)
    # The test settings give this run a database and a broker database of its own.
    os.environ["DJANGO_SETTINGS_MODULE"] = "apps.settings_test"
    os.environ.setdefault("TEST_REDIS_DB", "12")
    os.environ.setdefault("TEST_DB_SUFFIX", "_webbench")
    import django
    from django.conf import settings

    from apps import stack

    stack.start_for(settings)
    django.setup()
    from django.db import connection

    from apps.documents.models import Document
    from tests.live_worker import test_database_url

    database = connection.settings_dict["NAME"]
    print("creating the benchmark database…", flush=True)
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    team, token = _setup()
    var = Path(tempfile.mkdtemp(prefix="scriptorium-webbench-"))
    # The servers' own settings (apps.settings, as `make run`), on this run's database.
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "apps.settings",
           "DATABASE_URL": test_database_url(), "REDIS_URL": settings.REDIS_URL,
           "SCRIPTORIUM_VAR_DIR": str(var), "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
           "API_THROTTLE_RATE": "", "API_ITEM_THROTTLE_RATE": "", "PYTHONUNBUFFERED": "1"}
    if args.web_workers:
        env["WEB_WORKERS"] = str(args.web_workers)
    targets = {"/healthz": ("/healthz", {}),
               "API document list": (f"/api/v1/teams/{team.slug}/documents/",
                                     {"Authorization": f"Bearer {token}"})}
    runs: dict[str, list[dict]] = {label: [] for label in roots}
    load_before = os.getloadavg()  # other work on the machine moves every figure
    try:
        for round_ in range(args.rounds):
            order = list(roots) if round_ % 2 == 0 else list(reversed(roots))
            for label in order:
                print(f"round {round_ + 1}: {label} ({roots[label]})", flush=True)
                runs[label].append(measure_root(label, Path(roots[label]), env, targets, args,
                                                out))
    finally:
        Document.objects.filter(team=team).delete()
        team.delete()
        connection.creation.destroy_test_db(database, verbosity=0)
        shutil.rmtree(var, ignore_errors=True)
    results = {
        "command": " ".join(["python -m bench.web_bench", *sys.argv[1:]]),
        "machine": describe_machine("none"), "tool": args.tool, "roots": roots,
        "labels": list(roots), "connections": args.connections, "duration": args.duration,
        "warmup": args.warmup, "rounds": args.rounds,
        "load_average": {"start": round(load_before[0], 2), "end": round(os.getloadavg()[0], 2)},
        "summary": {label: {name: _summary([r[name] for r in rows]) for name in targets}
                    for label, rows in runs.items()},
    }
    (out / "results.json").write_text(json.dumps(results, indent=2))
    _report(out, results)
    print((out / "results.md").read_text())


if __name__ == "__main__":
    main()
