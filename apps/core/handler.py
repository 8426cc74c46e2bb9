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

One hop per request: Django's handle() sends request_started from the event loop (its sync
receivers in a hop of their own) and closes the response in another hop after sending it
(request_finished: the pooled connection goes back). Here both run in the chain's hop, as
the WSGI handler runs them: request_started before the chain, and a response that is not
streamed is closed once rendered, before its bytes are sent (its content is in memory; the
connection returns to the pool a send earlier). A streamed response is closed after it has
streamed, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import FileResponse
from django.urls import set_script_prefix

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

    async def handle(self, scope, receive, send):
        """Django's ASGIHandler.handle, less its two hops of signals (see the module's doc)."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        request, error_response = self.create_request(scope, body_file)
        if request is None:  # a malformed request: Django's own path
            body_file.close()
            await signals.request_started.asend(sender=self.__class__, scope=scope)
            await self.send_response(error_response, send)
            await sync_to_async(error_response.close)()
            return

        async def process_request():
            response = await self.get_response_async(request)
            with contextlib.suppress(asyncio.CancelledError):  # the client left meanwhile
                await self.send_response(response, send)
            return response

        # A disconnect while the response is made cancels it, as in Django.
        tasks = [
            asyncio.create_task(self.listen_for_disconnect(receive)),
            asyncio.create_task(process_request()),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                # exception(), not result(): re-raised here, the disconnect's RequestAborted
                # (sent by the server once the response is complete) would take this frame
                # into its traceback, and the frame holds the tasks: a cycle keeping the
                # whole request for the collector.
                error = task.exception()
                if isinstance(error, AssertionError):
                    body_file.close()
                    raise error
                if error is not None and not isinstance(error, RequestAborted):
                    raise error
            else:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        try:
            response = tasks[1].result()
        except asyncio.CancelledError:
            await signals.request_finished.asend(sender=self.__class__)
        else:
            if not response.closed:  # streamed: closed once sent
                await sync_to_async(response.close)()
            release_request(request, response)
        body_file.close()

    def _call_chain(self, request):
        signals.request_started.send(sender=self.__class__, scope=request.scope)
        response = self.get_response(request)
        response._handler_class = self.__class__  # request_finished's sender
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size
        if not response.streaming:
            response.close()  # request_finished on this thread, which holds the connection
        return response

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


def release_request(request, response) -> None:
    """Drop what a served request refers to, once its response is sent and closed.

    Django's request is in reference cycles (its messages storage, htmx details and lazy
    user point back at it), and DRF adds more (the view and its request point at each
    other, the response at the view): freed by no reference count, each request's ~230
    objects (its rows too) waited for the collector, which, promoted past the young
    passes by the requests in flight, freed them in full passes that paused the process
    70-200 ms about once a second under load (docs/deployment.md). Emptied here, they are
    freed at once. Not for a request whose view may still run (a client that left)."""
    view = (getattr(response, "renderer_context", None) or {}).get("view")  # DRF's
    for obj in (view, getattr(view, "request", None), request):
        if obj is not None:
            vars(obj).clear()
    if view is not None:
        response.renderer_context = None
