"""Idle memory of the embedded stack: `python -m bench.stack_bench --out DIR`.

Starts `manage.py serve` (web, worker with beat, embedded Postgres and Redis) in a fresh
var dir on a free port, waits until /healthz answers, lets it settle, then sums the resident
memory of every process of the stack. Writes a Markdown table."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stack_processes(serve: psutil.Process, var: Path) -> list[psutil.Process]:
    procs = [serve, *serve.children(recursive=True)]
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(var) in cmdline and proc not in procs:  # the daemonised Postgres and Redis
            procs.append(proc)
            procs.extend(c for c in proc.children(recursive=True) if c not in procs)
    return procs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "var" / "bench"))
    parser.add_argument("--settle", type=float, default=15.0)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    var = Path(tempfile.mkdtemp(prefix="scriptorium-bench-"))
    port = free_port()
    env = {**os.environ, "SCRIPTORIUM_VAR_DIR": str(var), "PORT": str(port)}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    serve = subprocess.Popen([sys.executable, "manage.py", "serve"], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)  # noqa: S310
                break
            except OSError:
                if time.monotonic() > deadline or serve.poll() is not None:
                    raise SystemExit("the stack did not come up") from None
                time.sleep(1)
        time.sleep(args.settle)
        rows = []
        for proc in stack_processes(psutil.Process(serve.pid), var):
            try:
                name = " ".join(proc.cmdline()[:4])[:70]
                rows.append((proc.memory_info().rss, proc.pid, name))
            except psutil.NoSuchProcess:
                continue
        rows.sort(reverse=True)
        total = sum(r[0] for r in rows)
        lines = ["| process | RSS (MB) |", "|---|---:|"]
        lines += [f"| `{name}` | {rss / 2**20:.0f} |" for rss, _, name in rows]
        lines += [f"| **total ({len(rows)} processes)** | **{total / 2**20:.0f}** |"]
        table = "\n".join(lines)
        (out / "stack_memory.md").write_text(table + "\n")
        print(table)
    finally:
        serve.send_signal(signal.SIGINT)
        serve.wait(60)


if __name__ == "__main__":
    main()
