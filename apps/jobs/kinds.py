"""The registry of job kinds: what runs a kind, and on which queue.

A runner takes the Job row and a Progress callable and returns the result (JSON). Runners
are adapters over services and the engine; the task that calls them is generic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from workers.progress import Progress

Runner = Callable[["object", Progress], dict]
# Called when a job ends failed without its runner seeing it (retries exhausted), so the
# rows that mirror the job (a chat message, a document) can say so too.
OnFailure = Callable[["object", str], None]


@dataclass(frozen=True)
class JobKind:
    name: str
    label: str
    queue: str
    runner: Runner
    on_failure: OnFailure | None = None


_KINDS: dict[str, JobKind] = {}


def register(name: str, label: str, queue: str, on_failure: OnFailure | None = None):
    def decorator(runner: Runner) -> Runner:
        _KINDS[name] = JobKind(name, label, queue, runner, on_failure)
        return runner

    return decorator


def get_kind(name: str) -> JobKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise KeyError(f"unknown job kind {name!r}") from None


def all_kinds() -> list[JobKind]:
    return list(_KINDS.values())
