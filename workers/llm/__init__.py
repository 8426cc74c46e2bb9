"""LLM layer of the engine: one interface, several backends. No Django here.

from workers.llm import get_backend
llm = get_backend()                      # configured by LLM_* environment variables
llm.chat([{"role": "user", "content": "Hi"}], max_tokens=32).text
"""

from __future__ import annotations

from .base import (
    Capabilities,
    ChatResult,
    ContinuationLogprobs,
    Health,
    LLMBackend,
    StreamEvent,
    Usage,
)
from .config import (
    LLMSettings,
    available_backends,
    create_backend,
    describe,
    get_backend,
    register_backend,
    reset_backend,
)
from .errors import (
    BackendTimeout,
    BackendUnavailable,
    BadResponse,
    CapabilityMissing,
    ContextOverflow,
    InvalidRequest,
    LLMError,
)

__all__ = [
    "BackendTimeout",
    "BackendUnavailable",
    "BadResponse",
    "Capabilities",
    "CapabilityMissing",
    "ChatResult",
    "ContextOverflow",
    "ContinuationLogprobs",
    "Health",
    "InvalidRequest",
    "LLMBackend",
    "LLMError",
    "LLMSettings",
    "StreamEvent",
    "Usage",
    "available_backends",
    "create_backend",
    "describe",
    "get_backend",
    "register_backend",
    "reset_backend",
]
