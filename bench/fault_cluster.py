"""Celery worker processes for the fault benchmark, under a supervisor (bench/faults.py).

Each process's output goes to a log file; one that dies (SIGKILL, a poison job taking its
whole process down) is started again after a second, as systemd or compose would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent



def serve_commands(concurrency: int, interactive: int) -> list[list[str]]:
    """The worker command lines `manage.py serve` runs (its job, control and interactive
    workers), so that the benchmark runs the deployment as it is."""
    from apps.core.management.commands.serve import Command

    return Command._worker_commands({"concurrency": concurrency,  # noqa: SLF001
                                     "interactive_concurrency": interactive})


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


class Process:
    """One supervised child: its output goes to a log file; `ready` is set when a line
    with `ready_mark` appears."""

    def __init__(self, name: str, argv: list[str], env: dict, log_dir: Path, ready_mark: str):
        self.name, self.argv, self.env, self.ready_mark = name, argv, env, ready_mark
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen | None = None
        self.ready = threading.Event()

    def start(self) -> None:
        self.ready.clear()
        self.proc = subprocess.Popen(self.argv, env=self.env, cwd=ROOT, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen) -> None:
        with self.log_path.open("a") as log:
            for line in proc.stdout:
                log.write(line)
                log.flush()
                if self.ready_mark in line:
                    self.ready.set()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, signum: int) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signum)

    def stop(self) -> None:
        self.signal(signal.SIGTERM)
        try:
            self.proc and self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.proc.wait(10)

    def owns(self, pid: int) -> bool:
        """The pid is this process or one of its children (a prefork pool's)."""
        if not self.alive:
            return False
        if pid == self.proc.pid:
            return True
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        return int(stat.rsplit(")", 1)[1].split()[1]) == self.proc.pid


class Cluster:
    """The workers `manage.py serve` starts, with `jobs_workers` copies of its job worker
    (the one that serves the batch queue), each restarted when it dies. Every worker also
    imports bench.fault_kinds, the benchmark's own job kinds."""

    def __init__(self, env: dict, log_dir: Path, *, jobs_workers: int = 2,
                 concurrency: int = 2, interactive: int = 1, restart_delay: float = 1.0):
        from workers.queues import BATCH

        log_dir.mkdir(parents=True, exist_ok=True)
        tag = f"{os.getpid()}-{time.monotonic_ns() % 10**6}"
        self.workers: list[Process] = []
        for argv in serve_commands(concurrency, interactive):
            role = _option(argv, "-n").split("@")[0]
            serves_batch = BATCH in _option(argv, "-Q").split(",")
            for i in range(jobs_workers if serves_batch else 1):
                extra = ["-n", f"{role}{i}-{tag}@%h", "--include", "bench.fault_kinds",
                         "--without-gossip", "--without-mingle"]
                if "-s" in argv:  # the beat's schedule file: this run's own
                    extra += ["-s", str(log_dir / f"celerybeat-{tag}")]
                self.workers.append(Process(f"{role}{i}", [*argv, *extra], env, log_dir,
                                            " ready."))
        self.restart_delay = restart_delay
        self.deaths: list[dict] = []
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    @property
    def children(self) -> int:
        """Job slots: the prefork children (or threads) of all workers but the solo one."""
        return sum(int(_option(w.argv, "-c")) for w in self.workers if "-c" in w.argv)

    def start(self, timeout: float = 120) -> Cluster:
        for process in self.workers:
            process.start()
        for process in self.workers:
            if not process.ready.wait(timeout):
                self.stop()
                raise RuntimeError(f"{process.name} did not start; see {process.log_path}")
        threading.Thread(target=self._supervise, daemon=True, name="supervisor").start()
        return self

    def _supervise(self) -> None:
        while not self._stopping.wait(0.2):
            for process in self.workers:
                if process.alive:
                    continue
                self.deaths.append({"process": process.name, "at": time.time(),
                                    "returncode": process.proc.returncode})
                if self._stopping.wait(self.restart_delay):
                    return
                with self._lock:  # never a start after stop() has begun
                    if not self._stopping.is_set():
                        process.start()

    def kill_running(self, pids: list[int]) -> str | None:
        """SIGKILL the worker (and its pool) that runs one of these pids; its name."""
        for process in self.workers:
            if any(process.owns(pid) for pid in pids):
                process.signal(signal.SIGKILL)
                return process.name
        return None

    def stop(self) -> None:
        with self._lock:
            self._stopping.set()
        for process in self.workers:
            process.stop()


