"""The ASGI handler: Django's, with the middleware chain run as one synchronous call, and a
bound on the requests a process runs at once.

Django's middleware (security, sessions, CSRF, auth, messages, ...) are MiddlewareMixin
classes. In Django's async chain each of their process_request/process_response calls hops
to a thread and back: about a dozen hops for a request to a synchronous view, most of what a
small request costs. Built synchronously, the chain and the view run in one hop, on the
request's own thread (asgiref gives each request context its own). Async views (the live
event streams) still work: Django calls them through async_to_sync on the server's loop, and
their streamed bodies are sent from the loop as before.

Slots (WEB_REQUEST_SLOTS): a thread per request means, at 50 connections on two processes,
25 threads per process taking turns at one GIL and more than the connection pool holds; each
request then costs a third more CPU (measured in docs/deployment.md). A few at once still
overlap one request's database waits with another's Python; the rest wait on the event loop,
which costs nothing. A slot is held while the chain and the view run, not while a response
streams, and liveness (/healthz) takes none, so slow requests never make a live process look
dead.

Threads: asgiref gives each request a thread-sensitive context of its own, and with it a new
thread, started and joined per request; on a small request that cost as much as the view.
Here each request's context runs on an idle thread of the process's own (one executor of one
thread each, so a request's sync parts still share one thread), kept for the next request.
Nothing of a request stays on its thread: Django keeps connections, the URLconf and the
language per context, not per thread.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler

UNBOUNDED_PATHS = frozenset({"/healthz"})
IDLE_THREADS_KEPT = 16  # more than the slots: streams and /healthz hold threads beside them


class SyncChainASGIHandler(ASGIHandler):
    def __init__(self):
        super().__init__()
        # One semaphore per event loop (uvicorn has one; tests may run several in turn).
        self._slots: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._idle_threads: deque[ThreadPoolExecutor] = deque()
        # Built once: a SyncToAsync costs as much to make as to call.
        self._respond = sync_to_async(self._call_chain, thread_sensitive=True)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await super().__call__(scope, receive, send)  # Django's refusal
        try:
            thread = self._idle_threads.pop()
        except IndexError:
            thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")
        try:
            async with ThreadSensitiveContext(executor=thread):
                await self.handle(scope, receive, send)
        finally:
            if len(self._idle_threads) < IDLE_THREADS_KEPT:
                self._idle_threads.append(thread)
            else:
                thread.shutdown(wait=False)

    def _call_chain(self, request):
        return self.get_response(request)

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def get_response_async(self, request):
        run = self._respond
        slots = settings.WEB_REQUEST_SLOTS
        if not slots or request.path_info in UNBOUNDED_PATHS:
            return await run(request)
        loop = asyncio.get_running_loop()
        if loop not in self._slots:
            self._slots[loop] = asyncio.Semaphore(slots)
        async with self._slots[loop]:
            return await run(request)
