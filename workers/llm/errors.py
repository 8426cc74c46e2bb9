"""Typed errors of the LLM layer.

``transient`` tells whether trying again later may succeed: the backends retry those
briefly (with backoff, within a few seconds) before raising; a job that gets one goes back
to waiting and is counted on its row (the app's job layer), so retries never multiply.
"""

from __future__ import annotations


class LLMError(Exception):
    """Base of every error raised by an LLM backend."""

    transient: bool = False


class BackendUnavailable(LLMError):
    """The server cannot be reached, or answers that it is down or overloaded (5xx)."""

    transient = True


class BackendTimeout(LLMError):
    """The server accepted the request but did not answer in time."""

    transient = True


class BadResponse(LLMError):
    """A malformed or partial answer, e.g. a stream that broke off before its end.

    Transient: it is mostly a dropped connection or a restarting server.
    """

    transient = True


class ContextOverflow(LLMError):
    """The prompt (plus room for the output) does not fit the window; refused before sending."""

    def __init__(
        self,
        prompt_tokens: int,
        context_window: int,
        max_tokens: int = 0,
        message: str | None = None,
    ) -> None:
        self.prompt_tokens = prompt_tokens
        self.context_window = context_window
        self.max_tokens = max_tokens
        super().__init__(
            message
            or (
                f"prompt of {prompt_tokens} tokens + {max_tokens} for the output exceeds "
                f"the context window of {context_window} tokens"
            )
        )


class CapabilityMissing(LLMError):
    """The backend cannot do what was asked (e.g. no prompt log-probabilities)."""


class InvalidRequest(LLMError):
    """The server refused the request as malformed (4xx other than overflow)."""


XL3M_NEEDS_LOGPROBS = "XL3M needs prompt log-probabilities; this server does not provide them"


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, LLMError) and exc.transient
