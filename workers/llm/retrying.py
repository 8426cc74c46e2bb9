"""Retry policy for transient backend errors (tenacity, exponential backoff with jitter)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    before_sleep_log,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from .errors import is_transient

log = logging.getLogger(__name__)
T = TypeVar("T")


async def retry_async(
    call: Callable[[], Awaitable[T]],
    *,
    attempts: int,
    initial_wait: float = 0.5,
    max_wait: float = 8.0,
) -> T:
    """Await ``call()`` until it succeeds, retrying only errors marked transient."""
    retrying = AsyncRetrying(
        stop=stop_after_attempt(max(1, attempts)),
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
