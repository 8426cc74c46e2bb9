"""The ASGI handler: Django's, with the middleware chain run as one synchronous call.

Django's middleware (security, sessions, CSRF, auth, messages, ...) are MiddlewareMixin
classes. In Django's async chain each of their process_request/process_response calls hops
to a thread and back: about a dozen hops for a request to a synchronous view, most of what a
small request costs. Built synchronously, the chain and the view run in one hop, on the
request's own thread (asgiref gives each request context its own). Async views (the live
event streams) still work: Django calls them through async_to_sync on the server's loop, and
their streamed bodies are sent from the loop as before.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler


class SyncChainASGIHandler(ASGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def get_response_async(self, request):
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)
