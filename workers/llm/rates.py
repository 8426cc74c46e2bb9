"""How fast the configured model really is: every model call's tokens and seconds, recorded
where every process can read them, and the rates fitted from them.

A call costs ``per_call + prompt / prefill + completion × (1 / decode + per_context ×
window / 1000)`` seconds (writing a token reads the whole window); ``fit`` solves that for
the four unknowns by least squares over the recent calls of one
backend and model, so an estimate made before a question runs (``workers.qa.estimate``)
follows the machine it runs on — the embedded model on two cores, or a vLLM server on a
GPU — instead of a constant. Recording is best effort: a store that is down never fails a
call, and rates are simply unknown until calls have been recorded.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import redis

from workers import config
from workers.events import redis_py_url

log = logging.getLogger(__name__)

KEEP_CALLS = 400  # recent calls per model: enough to fit, few enough to follow a change
FIT_SECONDS = 30.0  # a process refits a model's rates at most this often
MIN_CALLS = 4
_KEY = "scriptorium:llm-calls:{model}"


@dataclass(frozen=True)
class CallSample:
    prompt_tokens: int  # read in this call (0: the writing part of a streamed call)
    completion_tokens: int
    seconds: float
    context: int = -1  # tokens in the window while writing (-1: the prompt read)

    @property
    def window(self) -> int:
        return self.prompt_tokens if self.context < 0 else self.context


@dataclass(frozen=True)
class Rates:
    """Prompt tokens read per second, completion tokens written per second, seconds a call
    costs beyond its tokens, and how many calls they were fitted from."""

    prefill: float
    decode: float
    per_call: float
    calls: int
    # Seconds more per written token for each 1,000 tokens in the window (attention reads
    # the whole window for every token written).
    per_context: float = 0.0

    def seconds(self, calls: int, prompt_tokens: int, completion_tokens: int,
                window: int | None = None) -> float:
        """``window``: tokens in the window while writing (default: a call's share of the
        prompt)."""
        window = prompt_tokens / max(1, calls) if window is None else window
        return (calls * self.per_call + prompt_tokens / self.prefill
                + completion_tokens * (1 / self.decode + self.per_context * window / 1000))


def model_key(backend) -> str:  # noqa: ANN001 - any LLMBackend
    return f"{backend.name}:{backend.model}"


def fit(samples: Sequence[CallSample]) -> Rates | None:
    """Rates from recorded calls; None when they are too few or too alike to tell prefill
    from decode (e.g. only one prompt length and one answer length)."""
    rows = [s for s in samples if s.seconds > 0 and (s.prompt_tokens or s.completion_tokens)]
    if len(rows) < MIN_CALLS:
        return None
    a = np.array([[1.0, s.prompt_tokens, s.completion_tokens,
                   s.completion_tokens * s.window / 1000] for s in rows])
    b = np.array([s.seconds for s in rows])
    if np.linalg.matrix_rank(a) < a.shape[1]:
        a = a[:, :3]  # every window alike: writing's cost per window cannot be told apart
        if np.linalg.matrix_rank(a) < a.shape[1]:
            return None  # every call alike: the costs cannot be told apart
    coef = [*(float(c) for c in _non_negative_least_squares(a, b)), 0.0][:4]
    per_call, per_prompt, per_completion, per_context = coef
    if per_prompt <= 0 or per_completion <= 0:
        return None  # the calls do not separate reading from writing yet
    return Rates(prefill=1.0 / per_prompt, decode=1.0 / per_completion, per_call=per_call,
                 calls=len(rows), per_context=per_context)


def _non_negative_least_squares(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Least squares with every coefficient >= 0 (a few unknowns: drop the negative ones
    and solve again, at most once per unknown)."""
    free = np.ones(a.shape[1], dtype=bool)
    coef = np.zeros(a.shape[1])
    for _ in range(a.shape[1]):
        solved, *_ = np.linalg.lstsq(a[:, free], b, rcond=None)
        coef[:] = 0.0
        coef[free] = solved
        if (coef >= 0).all():
            break
        free &= coef > 0
        if not free.any():
            break
    return np.clip(coef, 0.0, None)


class RateBook:
    """The recorded calls of every model, in Redis (shared by the web and the workers)."""

    def __init__(self, url: str):
        self.url = url
        self._fitted: dict[str, tuple[float, Rates | None]] = {}  # model -> (when, rates)
        self._client = redis.Redis.from_url(redis_py_url(url), socket_timeout=1.0,
                                            socket_connect_timeout=1.0)

    def record(self, model: str, sample: CallSample) -> None:
        key = _KEY.format(model=model)
        try:
            with self._client.pipeline(transaction=False) as pipe:
                pipe.lpush(key, json.dumps([sample.prompt_tokens, sample.completion_tokens,
                                            round(sample.seconds, 4), sample.context]))
                pipe.ltrim(key, 0, KEEP_CALLS - 1)
                pipe.execute()
        except (redis.RedisError, OSError) as exc:  # rates are a convenience, never a failure
            log.debug("model call not recorded: %s", exc)

    def samples(self, model: str) -> list[CallSample]:
        try:
            raw = self._client.lrange(_KEY.format(model=model), 0, KEEP_CALLS - 1)
        except (redis.RedisError, OSError) as exc:
            log.warning("model speed unknown (the rate store is unreachable): %s", exc)
            return []
        return [CallSample(*json.loads(item)) for item in raw]  # 3 or 4 numbers

    def forget(self, model: str) -> None:
        """Drop the recorded calls of ``model`` (a new server, a changed machine)."""
        try:
            self._client.delete(_KEY.format(model=model))
        except (redis.RedisError, OSError) as exc:
            log.warning("model calls not forgotten: %s", exc)
        self._fitted.pop(model, None)

    def rates(self, model: str) -> Rates | None:
        """The fitted rates, refitted at most every FIT_SECONDS: the cost preview asks on
        every keystroke, and a few calls more or less do not move the fit."""
        now = time.monotonic()
        cached = self._fitted.get(model)
        if cached is not None and now - cached[0] < FIT_SECONDS:
            return cached[1]
        rates = fit(self.samples(model))
        self._fitted[model] = (now, rates)
        return rates


_books: dict[tuple[int, str], RateBook] = {}
_books_lock = threading.Lock()


def book(url: str) -> RateBook:
    """This process's rate book for ``url`` (per pid: a forked child opens its own)."""
    key = (os.getpid(), url)
    with _books_lock:
        found = _books.get(key)
        if found is None:
            found = _books[key] = RateBook(url)
        return found


def record_call(backend, usage, seconds: float,  # noqa: ANN001 - LLMBackend, Usage
                window: int = -1) -> None:
    """Record one model call in the configured rate store (none configured: nothing).
    ``window``: tokens in the window while it wrote, when not the prompt it read."""
    url = config.current().rates_url
    if url and seconds > 0:
        book(url).record(model_key(backend), CallSample(usage.prompt_tokens,
                                                        usage.completion_tokens, seconds,
                                                        window))


def current_rates(backend) -> Rates | None:  # noqa: ANN001 - LLMBackend
    """The configured model's fitted rates, or None (no store, or too few calls yet)."""
    url = config.current().rates_url
    return book(url).rates(model_key(backend)) if url else None
