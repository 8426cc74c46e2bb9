"""Fault-injection benchmark: `python -m bench.faults --out DIR [--items 1000] [--chats 50]
[--latency-chats 20] [--llm-url URL] [--grounding off] [--skip-speedup] [--faults kill,
redis,postgres,llm,poison,hang]` (docs/deployment.md, "Faults under load").

Real processes throughout: its own embedded Postgres and Redis (under var/bench-faults;
or the servers DATABASE_URL / REDIS_URL name, which it then does not restart) and the
Celery workers `manage.py serve` starts (job workers, the interactive worker, the control
worker with the sweeper's beat; bench/fault_cluster.py), under a supervisor that restarts
a worker that dies, as systemd or compose would.

The model is reached over HTTP through a gate this process holds, so that "the LLM is
down" is a port that refuses connections: by default a stub OpenAI-compatible server in
this process that streams a fixed answer (so that 1,000 QA items and 50 chats fit on two
cores; the app's own work and rows are real), or --llm-url, any OpenAI-compatible server
(vLLM, llama.cpp) (bench/fault_llm.py). The embedded model's tokenizer counts tokens.

Phases, each after one unmeasured chat per worker child (its first answer loads the engine):
1. idle chat latency: LATENCY_CHATS chat questions, one every --chat-interval seconds, on
   an idle system; first token = the first "token" event on the message's Redis channel,
   timed from `ask`.
2. speed-up: a batch of ITEMS qa items on two job workers, then on one, with the same
   paced chats alongside (latency under load is read from the two-worker run).
3. faults: a batch of ITEMS items and CHATS concurrent chats, a poison job (kills its worker
   child every time) and a hanging job (bench/fault_kinds.py); meanwhile a job worker is
   SIGKILLed mid-job and restarted, Redis and Postgres are restarted, the LLM refuses
   connections for --llm-down seconds. Then the rows are checked (bench/fault_checks.py):
   every job ended within --bound seconds, failed ones with a reason; nothing lost,
   written twice or left pending; the poison job failed after JOB_MAX_ATTEMPTS and the
   hanging one at its time limit.

Writes results.json, results.md and faults.png into OUT/faults.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.fault_checks import check_rows, retrying, write_audit
from bench.fault_cluster import Cluster
from bench.fault_latency import FirstTokens
from bench.fault_llm import Gate, StubLLM
from bench.fault_report import summarise, write_report
from bench.machine import describe_machine

ROOT = Path(__file__).resolve().parent.parent
DOCUMENT = ROOT / "docs" / "architecture.md"  # small, real, in every checkout
QUESTIONS = ("Which layer may import Django?", "What does the sweeper do?",
             "Where do the job kinds live?", "What checks the import rules?",
             "Which backends does the engine have?")
ALL_FAULTS = ("kill", "redis", "postgres", "llm", "poison", "hang")


# -- the scenario ----------------------------------------------------------------------------


@dataclass
class Fixture:
    team: object
    user: object
    document: object


def make_fixture(document: Path = DOCUMENT, *, ingest: bool = True,
                 timeout: float = 300) -> Fixture:
    """A team, its owner and a small real document: uploaded and ingested by the workers
    (which must run), or with `ingest` False stored as read (its text, one page, no
    passages: enough for the "full" strategy, and no embedder to load)."""
    import hashlib

    from django.core.files.uploadedfile import SimpleUploadedFile

    from apps.accounts.models import User
    from apps.documents.models import DocStatus, Document
    from apps.documents.services import upload
    from apps.teams.services import create_team

    user, _ = User.objects.get_or_create(email="fault-bench@example.invalid")
    team = create_team(f"fault-bench-{time.time_ns()}", user)
    data = document.read_bytes()
    if not ingest:
        text = data.decode()
        doc = Document.objects.create(
            team=team, created_by=user, title=document.stem, original_name=document.name,
            sha256=hashlib.sha256(data).hexdigest(), file=f"bench/{document.name}",
            kind="text", size_bytes=len(data), status=DocStatus.READY, text=text,
            page_starts=[0], pages=1, words=len(text.split()))
        return Fixture(team, user, doc)
    doc = upload(team, user, SimpleUploadedFile(document.name, data)).document
    deadline = time.monotonic() + timeout
    while doc.status not in (DocStatus.READY, DocStatus.FAILED):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the document was not ingested in {timeout:.0f} s")
        time.sleep(0.5)
        doc.refresh_from_db()
    if doc.status != DocStatus.READY:
        raise RuntimeError(f"the document failed to ingest: {doc.error}")
    return Fixture(team, user, doc)


def submit_batch(fx: Fixture, items: int, strategy: str = "full"):
    from apps.api.services import submit_batch as submit

    questions = [f"{QUESTIONS[i % len(QUESTIONS)]} ({i})" for i in range(items)]
    spec = {"kind": "qa", "questions": questions, "document_ids": [fx.document.pk],
            "strategy": strategy, "name": f"fault bench, {items} items"}
    return submit(fx.team, spec, user=fx.user).batch


class Chats:
    """Chat questions about the document, each in a conversation of its own, with the
    time each was asked (for the first-token latency)."""

    def __init__(self, fx: Fixture, strategy: str = "full"):
        self.fx, self.strategy = fx, strategy
        self.asked: dict[int, float] = {}

    def ask(self, n: int) -> None:
        from apps.chat.services import ask, start_conversation

        conversation = start_conversation(self.fx.team, self.fx.user, [self.fx.document])
        started = time.time()
        reply = ask(conversation, self.fx.user, QUESTIONS[n % len(QUESTIONS)], self.strategy)
        self.asked[reply.pk] = started

    def paced(self, count: int, interval: float, stop: threading.Event | None = None):
        """Ask `count` questions `interval` seconds apart (until `stop`), in a thread."""
        def run() -> None:
            from django.db import connection

            try:
                for n in range(count):
                    if stop is not None and stop.is_set():
                        break
                    self.ask(n)
                    time.sleep(interval)
            finally:
                connection.close()

        thread = threading.Thread(target=run, daemon=True, name="chats")
        thread.start()
        return thread

    def latencies(self, tokens: FirstTokens) -> list[float]:
        return [tokens.first[pk] - at for pk, at in self.asked.items() if pk in tokens.first]


def wait_settled(team, since, deadline: float, ignore: tuple[int, ...] = ()) -> bool:
    """Until no job of the team created since `since` is unfinished (or the deadline)."""
    from apps.jobs.models import FINISHED, Job

    def open_jobs() -> int:
        return (Job.objects.filter(team=team, created_at__gte=since)
                .exclude(status__in=FINISHED).exclude(pk__in=ignore).count())

    with retrying() as run:
        while time.monotonic() < deadline:
            if not run(open_jobs):
                return True
            time.sleep(1)
    return False


# -- faults ------------------------------------------------------------------------------------


@dataclass
class Services:
    """Where the broker and the database are, and how to restart them (None: not ours)."""

    redis_url: str
    restart_redis: Callable[[float], None] | None = None
    restart_postgres: Callable[[float], None] | None = None


@contextlib.contextmanager
def use_broker(url: str):
    """This process sends its jobs to the broker at `url` while the block runs (a Redis of
    the caller's own, which it may restart; the settings' one is shared)."""
    from workers.celery import app

    def reset() -> None:
        if app._pool is not None:
            app._pool.force_close_all()
        app._pool = app.amqp._producer_pool = None

    before = app.conf.broker_url
    app.conf.broker_url = url
    reset()
    try:
        yield
    finally:
        app.conf.broker_url = before
        reset()


def redis_restarter(paths) -> Callable[[float], None]:
    """Stops the Redis at `paths` (SHUTDOWN: it writes its data), starts it `seconds` later."""
    from apps import stack

    def restart(seconds: float) -> None:
        stack.stop_redis(paths)
        time.sleep(seconds)
        stack.start_redis(paths)

    return restart


def restart_postgres(seconds: float) -> None:
    """Stops the embedded Postgres (fast: connections are cut), starts it `seconds` later
    with `manage.py stack start` (a fresh process: pgserver keeps one handle per data
    folder and process, which would not start it again here)."""
    from apps import stack

    stack.stop_postgres()
    time.sleep(seconds)
    subprocess.run([sys.executable, "manage.py", "stack", "start"], cwd=ROOT, check=True,
                   capture_output=True, timeout=120)


@dataclass
class FaultPlan:
    """When (seconds after the batch is submitted) each fault happens."""

    kill_at: float | None = 5.0
    redis_at: float | None = 20.0
    postgres_at: float | None = 35.0
    llm_at: float | None = 50.0
    llm_down: float = 30.0
    service_down: float = 2.0
    poison: bool = True
    hang: bool = True
    log: list[dict] = field(default_factory=list)


def _running_pids(since) -> list[int]:
    from apps.jobs.models import Job, Status

    workers = Job.objects.filter(status=Status.RUNNING, created_at__gte=since,
                                 kind="batch_item").values_list("worker", flat=True)
    return [int(w.rsplit(":", 1)[1]) for w in workers if ":" in w]


def inject(plan: FaultPlan, cluster: Cluster, services: Services, gate: Gate | None,
           started: float, since) -> threading.Thread:
    """Run the plan's faults at their times, in a thread; each is logged in plan.log."""

    def kill() -> str:
        deadline = time.monotonic() + 60
        with retrying() as run:
            while time.monotonic() < deadline:
                name = cluster.kill_running(run(lambda: _running_pids(since)))
                if name:
                    return f"SIGKILL {name} mid-job"
                time.sleep(0.2)
        return "no job was running"

    steps = [
        (plan.kill_at, "worker SIGKILL", kill),
        (plan.redis_at, "Redis restart",
         lambda: services.restart_redis(plan.service_down) if services.restart_redis
         else "skipped: not ours"),
        (plan.postgres_at, "Postgres restart",
         lambda: services.restart_postgres(plan.service_down) if services.restart_postgres
         else "skipped: not ours"),
        (plan.llm_at, f"LLM down {plan.llm_down:.0f} s",
         lambda: gate.down(plan.llm_down) if gate else "skipped: no gate"),
    ]

    def run() -> None:
        from django.db import connection

        for at, name, action in sorted((s for s in steps if s[0] is not None),
                                       key=lambda s: s[0]):
            time.sleep(max(0.0, started + at - time.time()))
            began = time.time()
            try:
                detail = action()
            except Exception as err:  # noqa: BLE001 - a fault that failed is reported
                detail = f"failed: {type(err).__name__}: {err}"
            plan.log.append({"fault": name, "at": round(began - started, 1),
                             "seconds": round(time.time() - began, 1),
                             "detail": detail or "done"})
        connection.close()

    thread = threading.Thread(target=run, daemon=True, name="faults")
    thread.start()
    return thread


def run_faults(fx: Fixture, cluster: Cluster, services: Services, gate: Gate | None, *,
               items: int, chats: int, plan: FaultPlan, bound_s: float) -> dict:
    """The fault phase: submit, inject, wait until everything ended (or the bound), check."""
    from django.conf import settings
    from django.utils import timezone

    from apps.jobs import services as jobs
    from bench import fault_kinds

    if plan.hang:  # the sender puts a kind's limits on its message (apps/jobs/dispatch.py)
        settings.JOB_TIME_LIMITS = {**settings.JOB_TIME_LIMITS,
                                    fault_kinds.HANG: fault_kinds.HANG_LIMITS}
    since = timezone.now()
    started = time.time()
    with write_audit():
        poison = jobs.create_job(fx.team, fault_kinds.POISON, {}) if plan.poison else None
        hang = jobs.create_job(fx.team, fault_kinds.HANG, {}) if plan.hang else None
        batch = submit_batch(fx, items)
        talk = Chats(fx)
        for n in range(chats):
            talk.ask(n)
        faults = inject(plan, cluster, services, gate, started, since)
        faults.join()
        settled = wait_settled(fx.team, since, time.monotonic() + bound_s)
        with retrying() as run:
            report = run(lambda: check_rows(
                fx.team, since, bound_s=bound_s, poison_id=poison and poison.pk,
                hang_id=hang and hang.pk))
    report.update({
        "settled": settled, "seconds": round(time.time() - started, 1), "batch": batch.pk,
        "faults": plan.log, "worker deaths": [
            {**d, "at": round(d["at"] - started, 1)} for d in cluster.deaths
            if d["at"] >= started],
        "finished over time": finished_over_time(fx.team, since, started)})
    return report


def finished_over_time(team, since, started: float) -> list[float]:
    """Seconds after `started` at which each batch item of the run ended (for the plot)."""
    from apps.api.models import BatchItem

    ends = BatchItem.objects.filter(batch__team=team, batch__created_at__gte=since,
                                    finished_at__isnull=False).values_list("finished_at",
                                                                           flat=True)
    return sorted(round(end.timestamp() - started, 2) for end in ends)


def run_batch(fx: Fixture, items: int, chats: Chats, tokens: FirstTokens, *,
              latency_chats: int, interval: float, timeout: float) -> dict:
    """A batch with paced chats alongside: its wall time and the chats' first tokens."""
    from apps.api.models import Batch

    started = time.time()
    batch = submit_batch(fx, items)
    stop = threading.Event()
    pacer = chats.paced(latency_chats, interval, stop)
    deadline = time.monotonic() + timeout
    with retrying() as run:
        while time.monotonic() < deadline and not run(
                lambda: Batch.objects.get(pk=batch.pk).is_finished):
            time.sleep(0.5)
    batch.refresh_from_db()
    stop.set()
    pacer.join()
    seconds = ((batch.finished_at.timestamp() if batch.finished_at else time.time())
               - started)
    wait_settled(fx.team, batch.created_at, time.monotonic() + 120)
    return {"items": items, "seconds": round(seconds, 1), "finished": batch.is_finished,
            "succeeded": batch.succeeded, "items_per_s": round(batch.done / seconds, 2)}


def idle_latency(fx: Fixture, chats: Chats, *, count: int, interval: float) -> None:
    chats.paced(count, interval).join()
    wait_settled(fx.team, fx.document.created_at, time.monotonic() + 120 + count * interval)


def warm_up(fx: Fixture, cluster: Cluster) -> None:
    """One chat per worker child at once, not measured: a child's first answer loads the
    tokenizer and the engine (seconds to tens of seconds here), which is not latency."""
    from django.utils import timezone

    since = timezone.now()
    for n in range(cluster.children):
        Chats(fx).ask(n)
    wait_settled(fx.team, since, time.monotonic() + 300)


# -- the run -----------------------------------------------------------------------------------


def worker_env(services: Services, gate: Gate, extra: dict | None = None) -> dict:
    """The workers' environment: this run's servers and model, and a sweeper quick enough
    for a benchmark (lost after three missed heartbeats, swept every two seconds)."""
    from django.conf import settings

    from apps.jobs.services import HEARTBEAT_SECONDS
    from bench.fault_kinds import time_limits_env  # registers kinds: the apps must be ready
    from workers.llm.model_store import ensure_model

    return {
        **os.environ, "DJANGO_SETTINGS_MODULE": os.environ["DJANGO_SETTINGS_MODULE"],
        "DATABASE_URL": database_url(), "REDIS_URL": services.redis_url,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT), "PYTHONUNBUFFERED": "1",
        "LLM_BACKEND": "openai", "LLM_BASE_URL": gate.url, "LLM_TOKENIZER": str(ensure_model()),
        "LLM_TORCH_THREADS": "1",
        "JOB_TIME_LIMITS": time_limits_env(os.environ.get("JOB_TIME_LIMITS", "")),
        "JOB_LOST_AFTER_SECONDS": str(int(2.5 * HEARTBEAT_SECONDS)), "JOB_SWEEP_INTERVAL": "2",
        **(extra or {}),
    }


def database_url() -> str:
    """settings.DATABASE_URL naming the database this process uses (a test database's
    name differs from the URL's)."""
    from urllib.parse import urlsplit, urlunsplit

    from django.conf import settings
    from django.db import connection

    parts = urlsplit(settings.DATABASE_URL)
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


def setup_django(var: Path) -> Services:
    """This run's own embedded Postgres and Redis under `var` (unless DATABASE_URL /
    REDIS_URL name servers), migrated; Django set up on them."""
    os.environ.setdefault("SCRIPTORIUM_VAR_DIR", str(var))
    os.environ.setdefault("LLM_MODELS_DIR", str(ROOT / "var" / "models"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "apps.settings"
    external = {name: bool(os.environ.get(name)) for name in ("DATABASE_URL", "REDIS_URL")}
    import django
    from django.conf import settings

    from apps import stack

    stack.start_for(settings)
    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    return Services(
        settings.REDIS_URL,
        restart_redis=None if external["REDIS_URL"] else redis_restarter(stack.redis_paths()),
        restart_postgres=None if external["DATABASE_URL"] else restart_postgres)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "var" / "bench"))
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--chats", type=int, default=50)
    parser.add_argument("--latency-chats", type=int, default=20)
    parser.add_argument("--chat-interval", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=2,
                        help="children per job worker (serve's --concurrency)")
    parser.add_argument("--bound", type=float, default=900.0,
                        help="seconds within which every job of the fault run must end")
    parser.add_argument("--faults", default=",".join(ALL_FAULTS))
    parser.add_argument("--llm-url", help="an OpenAI-compatible server (default: the stub)")
    parser.add_argument("--llm-down", type=float, default=30.0)
    parser.add_argument("--token-delay", type=float, default=0.01,
                        help="the stub's seconds per streamed word")
    parser.add_argument("--grounding", default="off",
                        help="QA_GROUNDING of the workers (off: items cost no embedding)")
    parser.add_argument("--skip-speedup", action="store_true")
    parser.add_argument("--skip-faults", action="store_true")
    parser.add_argument("--var", default=str(ROOT / "var" / "bench-faults"),
                        help="where this run's embedded servers live")
    parser.add_argument("--data", help="unused: the benchmark brings its document")
    args = parser.parse_args()
    args.chosen = set(args.faults.split(",")) - {""}
    unknown = args.chosen - set(ALL_FAULTS)
    if unknown:
        parser.error(f"unknown fault(s): {', '.join(sorted(unknown))}")
    return args


class Run:
    """One benchmark run: its servers, model gate, workers and results, phase by phase."""

    def __init__(self, args: argparse.Namespace):
        self.args, self.out = args, Path(args.out) / "faults"
        self.services = setup_django(Path(args.var))
        self.stub = None if args.llm_url else StubLLM(args.token_delay)
        self.gate = Gate(args.llm_url or self.stub.url)
        self.env = worker_env(self.services, self.gate, {"QA_GROUNDING": args.grounding})
        self.tokens = FirstTokens(self.services.redis_url)
        self.cluster: Cluster | None = None
        self.results: dict = {
            "command": "python -m bench.faults " + " ".join(sys.argv[1:]),
            "machine": describe_machine("openai"),
            "config": {"items": args.items, "chats": args.chats, "bound_s": args.bound,
                       "latency_chats": args.latency_chats,
                       "chat_interval": args.chat_interval, "concurrency": args.concurrency,
                       "faults": sorted(args.chosen), "grounding": args.grounding,
                       "llm": args.llm_url or f"stub ({args.token_delay} s/word)"}}

    def workers(self, jobs_workers: int) -> Cluster:
        if self.cluster is not None:
            self.cluster.stop()
        self.cluster = Cluster(self.env, self.out / "logs", jobs_workers=jobs_workers,
                               concurrency=self.args.concurrency).start()
        self.results["config"]["workers"] = [" ".join(w.argv[3:])
                                             for w in self.cluster.workers]
        return self.cluster

    def phases(self) -> None:
        args, results = self.args, self.results
        self.workers(2)
        print("ingesting the document…", flush=True)
        fx = make_fixture()
        warm_up(fx, self.cluster)
        idle = Chats(fx)
        print(f"idle latency: {args.latency_chats} chats", flush=True)
        idle_latency(fx, idle, count=args.latency_chats, interval=args.chat_interval)
        results["latency idle"] = idle.latencies(self.tokens)
        if not args.skip_speedup:
            results["speed-up"] = {}
            for count in (2, 1):
                if count == 1:
                    warm_up(fx, self.workers(1))
                print(f"batch of {args.items} on {count} job worker(s)", flush=True)
                loaded = Chats(fx)
                results["speed-up"][str(count)] = run_batch(
                    fx, args.items, loaded, self.tokens, latency_chats=args.latency_chats,
                    interval=args.chat_interval, timeout=args.bound)
                if count == 2:
                    results["latency loaded"] = loaded.latencies(self.tokens)
            warm_up(fx, self.workers(2))
        if not args.skip_faults:
            chosen = args.chosen
            print(f"faults: {args.items} items, {args.chats} chats, {sorted(chosen)}",
                  flush=True)
            plan = FaultPlan(
                kill_at=5.0 if "kill" in chosen else None,
                redis_at=20.0 if "redis" in chosen else None,
                postgres_at=35.0 if "postgres" in chosen else None,
                llm_at=50.0 if "llm" in chosen else None, llm_down=args.llm_down,
                poison="poison" in chosen, hang="hang" in chosen)
            results["faults"] = run_faults(fx, self.cluster, self.services, self.gate,
                                           items=args.items, chats=args.chats, plan=plan,
                                           bound_s=args.bound)

    def close(self) -> None:
        from apps import stack

        if self.cluster is not None:
            self.cluster.stop()
        self.tokens.stop()
        self.gate.close()
        stack.stop_all(only=set(stack.started_here))  # this run's own servers


def main() -> None:
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the workers on the way out
    run = Run(args)
    try:
        run.phases()
    except BaseException as err:  # the figures so far are still written
        run.results["error"] = f"{type(err).__name__}: {err}"
        raise
    finally:
        run.close()
        run.results["summary"] = summarise(run.results)
        write_report(run.out, run.results)
        print((run.out / "results.md").read_text())


if __name__ == "__main__":
    main()
