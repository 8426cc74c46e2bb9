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
"""

from __future__ import annotations

import asyncio
import weakref

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler

UNBOUNDED_PATHS = frozenset({"/healthz"})


class SyncChainASGIHandler(ASGIHandler):
    def __init__(self):
        super().__init__()
        # One semaphore per event loop (uvicorn has one; tests may run several in turn).
        self._slots: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def get_response_async(self, request):
        run = sync_to_async(self.get_response, thread_sensitive=True)
        slots = settings.WEB_REQUEST_SLOTS
        if not slots or request.path_info in UNBOUNDED_PATHS:
            return await run(request)
        loop = asyncio.get_running_loop()
        if loop not in self._slots:
            self._slots[loop] = asyncio.Semaphore(slots)
        async with self._slots[loop]:
            return await run(request)
