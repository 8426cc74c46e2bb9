"""The backend registry and the per-process backend, built from the engine's configuration
(``workers.config``: installed by the app, else read from the environment).

Environment (``LLMSettings.from_env``):
    LLM_BACKEND         embedded | vllm | openai (default embedded)
    LLM_BASE_URL        server URL for vllm/openai, with or without /v1
    LLM_MODEL           served model name (default: the first one the server lists)
    LLM_API_KEY         bearer token, if the server wants one
    LLM_CONTEXT_WINDOW  override of the window the backend reports
    LLM_CONCURRENCY     requests in flight at once per process (default 8)
    LLM_TIMEOUT         seconds to wait for an answer or the next stream chunk (default 120)
    LLM_MAX_ATTEMPTS    tries for a transient error, first included (default 3)
    LLM_MODELS_DIR      where the embedded model is converted to (default var/models)
    LLM_TOKENIZER       openai backend only: local tokenizer folder of the served model
    LLM_BATCH_SIZE      embedded backend only: requests decoded together (default 8; 1: one
                        at a time)
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from workers.config import (  # noqa: F401 - the batch size: part of this module's API
    DEFAULT_BATCH_SIZE,
    LLMSettings,
    current,
    embedded_batch_size,
)

from .base import LLMBackend

BackendFactory = Callable[["LLMSettings"], LLMBackend]

# -- registry ----------------------------------------------------------------------------

_REGISTRY: dict[str, BackendFactory] = {}


def register_backend(name: str, factory: BackendFactory) -> None:
    """Add (or replace) a backend kind selectable with ``LLM_BACKEND=name``."""
    _REGISTRY[name] = factory


def available_backends() -> list[str]:
    return sorted(_REGISTRY)


def _need_url(settings: LLMSettings) -> str:
    if not settings.base_url:
        raise ValueError(f"LLM_BACKEND={settings.backend} needs LLM_BASE_URL")
    return settings.base_url


def _embedded(settings: LLMSettings) -> LLMBackend:
    from .embedded import EmbeddedBackend

    return EmbeddedBackend(settings.models_dir, context_window=settings.context_window)


def _http_kwargs(settings: LLMSettings) -> dict[str, Any]:
    return {
        "model": settings.model,
        "api_key": settings.api_key,
        "context_window": settings.context_window,
        "concurrency": settings.concurrency,
        "timeout": settings.timeout,
        "max_attempts": settings.max_attempts,
        "tokenizer": settings.tokenizer,
    }


def _vllm(settings: LLMSettings) -> LLMBackend:
    from .vllm_backend import VLLMBackend

    return VLLMBackend(_need_url(settings), **_http_kwargs(settings))


def _openai(settings: LLMSettings) -> LLMBackend:
    from .openai_compat import OpenAICompatBackend

    return OpenAICompatBackend(_need_url(settings), **_http_kwargs(settings))


register_backend("embedded", _embedded)
register_backend("vllm", _vllm)
register_backend("openai", _openai)


def create_backend(settings: LLMSettings | None = None) -> LLMBackend:
    """A new backend for ``settings`` (default: the engine's configuration)."""
    settings = settings or current().llm
    try:
        factory = _REGISTRY[settings.backend]
    except KeyError:
        raise ValueError(
            f"unknown LLM_BACKEND {settings.backend!r}; choose one of {available_backends()}"
        ) from None
    return factory(settings)


# -- the process's backend -----------------------------------------------------------------

_backend: LLMBackend | None = None
_backend_pid: int | None = None
_backend_settings: LLMSettings | None = None
_backend_lock = threading.Lock()


def get_backend() -> LLMBackend:
    """The backend of the engine's configuration (``workers.config.current().llm``),
    created once per process and again when the configuration changes.

    A backend inherited through fork (Celery's prefork pool) is not reused: its event-loop
    thread did not survive the fork, so the child makes its own.
    """
    global _backend, _backend_pid, _backend_settings
    settings = current().llm
    with _backend_lock:
        if _backend is None or _backend_pid != os.getpid() or _backend_settings != settings:
            # The old one is not closed: a caller may still hold it (reset_backend closes).
            _backend = create_backend(settings)
            _backend_pid, _backend_settings = os.getpid(), settings
        return _backend


def reset_backend() -> None:
    """Forget the cached backend (tests; after changing the environment)."""
    global _backend
    with _backend_lock:
        if _backend is not None:
            _backend.close()
        _backend = None


def describe(backend: LLMBackend | None = None) -> dict[str, Any]:
    """What a status page shows; never raises, and never loads the embedded model.

    Keys: backend, model, base_url, context_window, capabilities (dict of flags),
    healthy, error, detail.
    """
    settings = current().llm
    info: dict[str, Any] = {
        "backend": settings.backend,
        "model": settings.model,
        "base_url": settings.base_url,
        "context_window": None,
        "capabilities": {},
        "healthy": False,
        "error": None,
        "detail": {},
    }
    try:
        backend = backend or get_backend()
        info["backend"] = backend.name
        info["base_url"] = getattr(backend, "api_url", None)
        health = backend.health()
        info["healthy"], info["error"], info["detail"] = health.healthy, health.error, health.detail
        info["capabilities"] = backend.capabilities.as_dict()
        info["model"] = backend.model or settings.model
        if health.healthy:
            info["context_window"] = backend.context_window
    except Exception as exc:  # a status page must render whatever is broken
        info["healthy"] = False
        info["error"] = info["error"] or f"{type(exc).__name__}: {exc}"
    return info
