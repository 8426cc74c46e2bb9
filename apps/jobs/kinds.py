"""The registry of job kinds: what runs a kind, on which queue, and what its own rows do
when the job moves.

A runner takes the Job row and a Progress callable and returns the result (JSON). Runners
are pure work: they raise (Cancelled, a transient error, any error) and never mirror the
job's state onto the app's rows. That is the hooks' job, and apps/jobs/services.py calls
each hook once, in one place, only from the process whose conditional update of the job
row (the claim by task id) changed its state — a stale or superseded worker calls none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from workers.progress import Progress

Runner = Callable[["object", Progress], dict]
Hook = Callable[..., None]


@dataclass(frozen=True)
class Hooks:
    """What happens to a kind's own rows (a chat message, a document, a batch item) when its
    job moves. Each is optional; each gets the job row as it is after the move.

    on_start(job)             claimed by a worker, about to run
    on_success(job, result)   the runner returned `result` (stored on the job too)
    on_failure(job, error)    failed: the runner raised, retries or attempts ran out, the
                              time limit passed (job.error_code says which, when known)
    on_cancel(job)            cancelled: at once when queued, at the next step when running
    on_requeue(job, reason)   back to waiting: a transient error retried with backoff, the
                              sweeper re-sending a lost job, or a user's retry (reason "")
    """

    on_start: Hook | None = None
    on_success: Hook | None = None
    on_failure: Hook | None = None
    on_cancel: Hook | None = None
    on_requeue: Hook | None = None


@dataclass(frozen=True)
class JobKind:
    name: str
    label: str
    queue: str
    runner: Runner
    hooks: Hooks = field(default_factory=Hooks)
    # Exceptions whose message is meant for people: the job (and its rows) show it as it is;
    # any other error shows as "Type: message".
    plain_errors: tuple[type[BaseException], ...] = (ValueError,)


_KINDS: dict[str, JobKind] = {}


def register(name: str, label: str, queue: str, hooks: Hooks | None = None,
             plain_errors: tuple[type[BaseException], ...] = (ValueError,)):
    def decorator(runner: Runner) -> Runner:
        _KINDS[name] = JobKind(name, label, queue, runner, hooks or Hooks(), plain_errors)
        return runner

    return decorator


def get_kind(name: str) -> JobKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise KeyError(f"unknown job kind {name!r}") from None


def all_kinds() -> list[JobKind]:
    return list(_KINDS.values())
