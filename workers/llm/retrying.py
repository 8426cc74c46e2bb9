"""Retry policy for transient backend errors (tenacity, exponential backoff with jitter).

Brief on purpose: this rides out a blip inside one call (a dropped connection, a 503 while
the server restarts) — at most ``attempts`` tries and RETRY_BUDGET_SECONDS of waiting — so
that one bad moment does not throw away a long job's work. Outages longer than that are the
job layer's to wait out (apps/jobs/services.py: the job goes back to queued with a backoff
of up to minutes, JOB_MAX_ATTEMPTS times, counted on its row). The two do not compound into
long waits: the worst case is LLM_MAX_ATTEMPTS quick tries per job attempt.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    before_sleep_log,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
    wait_random,
)

from .errors import is_transient

log = logging.getLogger(__name__)
T = TypeVar("T")
# The longest a call keeps retrying (the waits between tries); then the error is raised.
RETRY_BUDGET_SECONDS = 10.0


async def retry_async(
    call: Callable[[], Awaitable[T]],
    *,
    attempts: int,
    initial_wait: float = 0.5,
    max_wait: float = 8.0,
    budget: float = RETRY_BUDGET_SECONDS,
) -> T:
    """Await ``call()`` until it succeeds, retrying only errors marked transient, for at
    most ``attempts`` tries and ``budget`` seconds."""
    retrying = AsyncRetrying(
        stop=stop_after_attempt(max(1, attempts)) | stop_after_delay(budget),
        # Exponential backoff plus jitter, so that many workers do not retry in step.
        wait=wait_exponential(multiplier=initial_wait, max=max_wait) + wait_random(0, initial_wait),
        retry=retry_if_exception(is_transient),
        before_sleep=before_sleep_log(log, logging.WARNING),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await call()
    raise AssertionError("unreachable: tenacity reraises the last error")
