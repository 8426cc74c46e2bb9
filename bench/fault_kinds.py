"""Job kinds that exist only for the fault benchmark (bench/faults.py, tests/test_faults.py).

A worker started by the harness imports this module (``celery worker --include
bench.fault_kinds``); the app's own workers never do, so no user can make these jobs. They
stand for failures no real input can be relied on to cause: a job that kills its worker
process every time it runs (a parser that segfaults, an out-of-memory kill), and a job
that hangs with its heartbeat alive (I/O that never returns).

Both run on the batch items' queue, read by name from the registry, so they compete with
the batch the way a real poison item would.
"""

from __future__ import annotations

import os
import time

from apps.jobs.kinds import get_kind, register

POISON = "bench_poison"
HANG = "bench_hang"
POISON_EXIT_CODE = 70  # what the worker dies with (EX_SOFTWARE), visible in its log
HANG_SECONDS = 24 * 3600  # "for ever", but a stray one still ends one day
# Its (soft, hard) time limits, seconds: every process that sends it (the harness, the
# sweeper re-sending it) must know them, so they go in JOB_TIME_LIMITS everywhere.
HANG_LIMITS = (5.0, 10.0)


def time_limits_env(current: str = "") -> str:
    """JOB_TIME_LIMITS for the environment with the hanging kind's limits added."""
    soft, hard = HANG_LIMITS
    return ",".join(filter(None, [current, f"{HANG}={soft:g}/{hard:g}"]))


def _queue() -> str:
    return get_kind("batch_item").queue


@register(POISON, "Bench: kills its worker", queue=_queue())
def run_poison(job, progress) -> dict:
    progress(0, 1, "About to kill this worker")
    os._exit(POISON_EXIT_CODE)  # noqa: SLF001 - the whole point: no cleanup, no ack


@register(HANG, "Bench: hangs", queue=_queue())
def run_hang(job, progress) -> dict:
    progress(0, 1, "Hanging")
    time.sleep(HANG_SECONDS)  # the heartbeat thread keeps the row fresh meanwhile
    return {"hung": HANG_SECONDS}
