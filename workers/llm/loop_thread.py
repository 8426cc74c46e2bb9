"""A private asyncio loop on a daemon thread: sync callers drive async HTTP code through it.

The HTTP backends are async inside (a batch is many concurrent requests under one
semaphore) while their callers, Celery tasks, are sync. One long-lived loop per backend
keeps the httpx connection pool alive between calls, and it works even when the caller
itself runs inside another event loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Iterator
from concurrent.futures import Future
from typing import TypeVar

T = TypeVar("T")


class LoopThread:
    def __init__(self, name: str = "llm-loop") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def submit(self, coro: Awaitable[T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)  # type: ignore[arg-type]

    def run(self, coro: Awaitable[T]) -> T:
        """Run ``coro`` on the loop and wait for its result from this (sync) thread."""
        return self.submit(coro).result()

    def iterate(self, agen: AsyncIterator[T]) -> Iterator[T]:
        """Drive an async iterator from sync code, one item at a time."""
        try:
            while True:
                try:
                    yield self.run(agen.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            # The caller stopped early (or an error): close the generator on its loop so
            # the HTTP response is released.
            aclose = getattr(agen, "aclose", None)
            if aclose is not None and not self._loop.is_closed():
                self.run(aclose())

    def stop(self) -> None:
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()
