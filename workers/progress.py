"""How engine code reports progress and learns that its job was cancelled.

The engine takes a `Progress` callable and calls it between steps; the caller (a Celery
task adapter) writes the job row and raises `Cancelled` when the user cancelled the job,
so the engine stops at the next step boundary without knowing about jobs or Django.
"""

from __future__ import annotations

from typing import Protocol


class Cancelled(Exception):
    """The job was cancelled by a user; stop at this step boundary."""


class Progress(Protocol):
    def __call__(self, current: int, total: int, message: str = "") -> None: ...


def no_progress(current: int, total: int, message: str = "") -> None:
    """A Progress that ignores reports, for callers outside a job."""
