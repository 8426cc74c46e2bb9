"""Run the whole stack in the foreground: embedded Postgres and Redis (unless external URLs
are set; manage.py starts them before this command, `apps.stack.start_for`), the Celery
workers and uvicorn with one web process per CPU (`--web-only`: those alone, as compose runs
them). Ctrl-C stops everything this command started.

The workers (docs/deployment.md):
- jobs: every job queue, interactive first (workers/queues.py), prefork children so that
  time limits and the memory cap per child hold;
- interactive: one more child for the interactive queue alone, so that a chat answer never
  waits for a batch item to end (0 turns it off);
- control: the sweeper and its beat scheduler in a solo process that runs nothing else, so
  a sweep never waits behind jobs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from apps import stack
from apps.core import webserver
from workers import queues

MAX_RESTARTS_A_MINUTE = 5  # a worker that keeps dying stops the whole server, loudly
# On SIGTERM or Ctrl-C, children get this long to finish what they are serving before
# SIGKILL (compose's stop_grace_period must exceed it, or Docker kills mid-drain).
STOP_SECONDS = 20


class Command(BaseCommand):
    help = "Serve Scriptorium: web server, Celery worker and the embedded services."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        # Job worker children; each one that answers loads the embedded model (~1 GiB).
        parser.add_argument(
            "--concurrency", type=int, default=int(os.environ.get("WORKER_CONCURRENCY", "2"))
        )
        parser.add_argument(
            "--interactive-concurrency",
            type=int,
            default=int(os.environ.get("INTERACTIVE_WORKER_CONCURRENCY", "1")),
        )
        parser.add_argument("--no-worker", action="store_true")
        # The supervised web processes alone (compose: its own services run the workers and
        # the migrations; no demo data).
        parser.add_argument("--web-only", action="store_true")
        # One web process per CPU this process may run on: a request's Python work holds
        # one core (the GIL), so one process per core is what the machine can serve.
        parser.add_argument(
            "--web-workers",
            type=int,
            default=int(os.environ.get("WEB_WORKERS") or 0) or len(os.sched_getaffinity(0)),
        )

    def handle(self, *args, **opts):
        if not opts["web_only"]:
            call_command("migrate", interactive=False, verbosity=0)
            call_command("demo_data")
        env = {
            **os.environ,
            "DATABASE_URL": settings.DATABASE_URL,
            "REDIS_URL": settings.REDIS_URL,
            "PYTHONUNBUFFERED": "1",
        }
        for name in ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"):
            env.setdefault(name, "0")  # uvicorn below speaks plain http (unless told otherwise)
        no_worker = opts["no_worker"] or opts["web_only"]
        commands = [] if no_worker else self._worker_commands(opts)
        try:  # refused here if taken: the web processes' SO_REUSEPORT would share it
            webserver.check_free(opts["host"], opts["port"])
        except OSError as err:
            raise CommandError(f"{opts['host']}:{opts['port']}: {err}") from None
        # One web process per socket of its own (apps/core/webserver.py), supervised with the
        # workers: an exit of any is started again, a web process that hangs too.
        commands += [
            [
                sys.executable,
                "-m",
                "apps.core.webserver",
                "--host",
                opts["host"],
                "--port",
                str(opts["port"]),
            ]
        ] * opts["web_workers"]
        # A web process beats from its event loop (apps/core/webserver.py); one whose beats
        # stop is hung and is replaced as an exited one is.
        beats: list[webserver.Heartbeat | None] = [None] * len(commands)

        def start(i: int) -> subprocess.Popen:
            if self._name(commands[i]) == "a worker":
                return subprocess.Popen(commands[i], env=env, cwd=stack.BASE_DIR)
            if beats[i] is not None:
                beats[i].close()
            beats[i] = webserver.Heartbeat()
            return beats[i].start(commands[i], env=env, cwd=stack.BASE_DIR)

        children = [start(i) for i in range(len(commands))]
        restarts: list[list[float]] = [[] for _ in commands]
        self.stdout.write(
            self.style.SUCCESS(
                f"Scriptorium is at http://{opts['host']}:{opts['port']}/  ({opts['web_workers']} "
                "web processes; Ctrl-C stops it)"
            )
        )
        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        timeout = settings.WEB_HEARTBEAT_TIMEOUT_S
        try:
            while not stopping:
                for i, child in enumerate(children):
                    if stopping:
                        break
                    if child.poll() is not None:
                        # A worker can exit on a broker outage (a Redis restart), a web
                        # process on a crash: start it again, as a supervisor would; jobs are
                        # on their rows.
                        why = f"exited (code {child.returncode})"
                    elif beats[i] and (late := beats[i].overdue(timeout)):
                        # SIGKILL: a stuck event loop cannot run uvicorn's graceful stop.
                        child.kill()
                        child.wait()
                        why = f"(pid {child.pid}) {late}, its event loop stuck; killed it"
                    else:
                        continue
                    recent = [t for t in restarts[i] if time.monotonic() - t < 60]
                    if len(recent) >= MAX_RESTARTS_A_MINUTE:
                        raise CommandError(
                            f"{self._name(commands[i])} {why}; restarted {len(recent)} "
                            "times in the last minute already, stopping"
                        )
                    self.stderr.write(
                        f"{self._name(commands[i]).capitalize()} {why}; starting it again."
                    )
                    restarts[i] = [*recent, time.monotonic()]
                    children[i] = start(i)
                time.sleep(0.5)
        finally:
            self._shutdown(children)

    @staticmethod
    def _name(command: list[str]) -> str:
        return "a web process" if "apps.core.webserver" in command else "a worker"

    @staticmethod
    def _worker_commands(opts) -> list[list[str]]:
        celery = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers.celery",
            "worker",
            "--loglevel",
            "INFO",
        ]
        commands = [
            [
                *celery,
                "-Q",
                ",".join(queues.JOB_QUEUES),
                "--pool",
                "prefork",
                "-c",
                str(opts["concurrency"]),
                "-n",
                "jobs@%h",
            ],
            [
                *celery,
                "-Q",
                queues.CONTROL,
                "--pool",
                "solo",
                "-B",
                "-s",
                str(stack.var_dir() / "celerybeat-schedule"),
                "-n",
                "control@%h",
            ],
        ]
        if opts["interactive_concurrency"] > 0:
            commands.append(
                [
                    *celery,
                    "-Q",
                    queues.INTERACTIVE,
                    "--pool",
                    "prefork",
                    "-c",
                    str(opts["interactive_concurrency"]),
                    "-n",
                    "interactive@%h",
                ]
            )
        return commands

    def _shutdown(self, children: list[subprocess.Popen]) -> None:
        self.stdout.write("Stopping…")
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
        stopped = stack.stop_all(only=set(stack.started_here))
        if stopped:
            self.stdout.write(f"Stopped the embedded {' and '.join(stopped)}.")
        self.stdout.write("Stopped.")
