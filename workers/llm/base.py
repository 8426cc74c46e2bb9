"""The one interface through which the engine talks to a language model.

Every backend (embedded transformers, vLLM, any OpenAI-compatible server) implements
``LLMBackend``. Calls are synchronous (Celery tasks are); ``generate_batch`` and
``continuation_logprobs_batch`` run their items concurrently inside the backend.

Messages are OpenAI-style dicts: ``{"role": "user", "content": "..."}``. Where a call
accepts "a prompt", a plain string is sent as one user message.

Sampling keywords (all optional) accepted by ``chat``/``stream``/``generate_batch``:
``max_tokens`` (default 256), ``temperature`` (default 0: greedy), ``top_p``, ``stop``
(list of strings, not included in the text), ``seed``, ``json_schema`` (a JSON Schema
dict: the answer is constrained to it where the backend can, see ``capabilities``),
``repetition_penalty`` (> 0; 1 = none; above 1 makes every token already in the prompt
or the output less likely, as transformers and vLLM define it — CTRL's penalty; a hint:
a backend without it, see ``capabilities.repetition_penalty``, generates without it).
"""

from __future__ import annotations

import asyncio
import math
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import ContextOverflow

Message = Mapping[str, str]
Messages = Sequence[Message]
PromptLike = str | Messages

DEFAULT_MAX_TOKENS = 256
_SAMPLING_KEYS = frozenset({"max_tokens", "temperature", "top_p", "stop", "seed", "json_schema",
                            "repetition_penalty"})


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )


@dataclass(frozen=True)
class ChatResult:
    text: str
    usage: Usage
    finish_reason: str | None = None  # "stop", "length", ...


@dataclass(frozen=True)
class StreamEvent:
    """One item of ``stream()``: text deltas, then one final event with ``usage`` set."""

    delta: str = ""
    usage: Usage | None = None
    finish_reason: str | None = None

    @property
    def is_final(self) -> bool:
        return self.usage is not None


@dataclass(frozen=True)
class ContinuationLogprobs:
    """Log-probabilities of each token of a continuation given the prompt before it.

    ``entropies`` (nats) is the entropy of the model's next-token distribution at each
    continuation position; ``entropy_exact`` is False when it was estimated from the
    top-k alternatives a server returned (the rest of the mass lumped together).
    """

    tokens: list[str]
    token_ids: list[int]
    logprobs: list[float]
    entropies: list[float] | None
    entropy_exact: bool
    usage: Usage
    # Index in the tokenised prompt+continuation where the continuation starts; it can
    # start before len(prompt tokens) when the tokenizer merges across the boundary.
    start: int = 0

    @property
    def total_logprob(self) -> float:
        return math.fsum(self.logprobs)

    @property
    def mean_nll(self) -> float:
        """Mean negative log-likelihood per token (what XL3M ranks segments by)."""
        return -self.total_logprob / len(self.logprobs) if self.logprobs else 0.0

    @property
    def mean_entropy(self) -> float | None:
        if not self.entropies:
            return None
        return math.fsum(self.entropies) / len(self.entropies)


@dataclass(frozen=True)
class Capabilities:
    streaming: bool = True
    prompt_logprobs: bool = False  # continuation_logprobs works
    top_logprobs: bool = False  # entropy per token available
    guided_json: bool = False  # json_schema is enforced, not just requested
    tokenize: bool = False  # count_tokens with the served model's tokenizer
    concurrent_batch: bool = False  # generate_batch items really run in parallel
    repetition_penalty: bool = False  # the repetition_penalty sampling option is applied

    def as_dict(self) -> dict[str, bool]:
        return asdict(self)


@dataclass
class Health:
    healthy: bool
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"healthy": self.healthy, "error": self.error, **self.detail}


def concurrency(backend: Any) -> int:
    """Requests in flight at once: the backend's one setting (1 when it has none)."""
    return max(1, int(getattr(backend, "concurrency", 1) or 1))


def collect(events: Iterable[StreamEvent], usage: Usage | None = None) -> ChatResult:
    """A stream gathered into one result: its deltas, then its final event's usage and
    finish reason (``usage`` and "length" if the stream ends without one)."""
    parts: list[str] = []
    reason = "length"
    for event in events:
        parts.append(event.delta or "")
        if event.usage is not None:
            usage, reason = event.usage, event.finish_reason or reason
    return ChatResult("".join(parts), usage or Usage(), reason)


def as_messages(prompt: PromptLike) -> list[dict[str, str]]:
    """A plain string becomes one user message; message lists are copied as plain dicts."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [dict(message) for message in prompt]


def check_sampling(sampling: Mapping[str, Any]) -> dict[str, Any]:
    """Reject unknown keywords early: a typo must not silently change the sampling."""
    unknown = set(sampling) - _SAMPLING_KEYS
    if unknown:
        raise TypeError(f"unknown sampling options: {sorted(unknown)}")
    out = dict(sampling)
    out.setdefault("max_tokens", DEFAULT_MAX_TOKENS)
    if out["max_tokens"] < 1:
        raise ValueError("max_tokens must be at least 1")
    penalty = out.get("repetition_penalty")
    if penalty is not None:
        out["repetition_penalty"] = float(penalty)
        if not out["repetition_penalty"] > 0:
            raise ValueError("repetition_penalty must be positive (1.0: no penalty)")
    stop = out.get("stop")
    if isinstance(stop, str):
        out["stop"] = [stop]
    return out


def check_fits(prompt_tokens: int, max_tokens: int, context_window: int) -> None:
    """Refuse (before sending) a prompt that leaves no room for ``max_tokens`` of output."""
    if prompt_tokens + max_tokens > context_window:
        raise ContextOverflow(prompt_tokens, context_window, max_tokens)


def continuation_start(prompt_ids: Sequence[int], full_ids: Sequence[int]) -> int:
    """Index where the continuation begins in the tokens of prompt+continuation.

    Usually ``len(prompt_ids)``; when the tokenizer merges the last prompt characters
    with the first continuation characters, the tokens differ from that point and the
    first differing token is counted as part of the continuation (it carries some of
    its text). Never 0: the first token of a text has no conditional probability.
    """
    common = 0
    for a, b in zip(prompt_ids, full_ids, strict=False):
        if a != b:
            break
        common += 1
    return max(common, 1)


def entropy_from_top(logprobs: Sequence[float]) -> float:
    """Entropy estimate from top-k log-probabilities; the leftover mass counts as one outcome.

    A lower bound of the true entropy; good enough to rank segments when k is >= 5.
    """
    probs = [math.exp(lp) for lp in logprobs]
    rest = max(0.0, 1.0 - math.fsum(probs))
    terms = [p * math.log(p) for p in probs if p > 0]
    if rest > 1e-12:
        terms.append(rest * math.log(rest))
    return -math.fsum(terms)


class LLMBackend(ABC):
    """Abstract backend. Subclasses set ``name`` and ``model`` and implement the abstracts."""

    name: str = "abstract"
    model: str = ""

    @property
    @abstractmethod
    def context_window(self) -> int:
        """Total tokens (prompt + output) the served model accepts."""

    @property
    @abstractmethod
    def capabilities(self) -> Capabilities: ...

    @abstractmethod
    def chat(self, messages: PromptLike, **sampling: Any) -> ChatResult:
        """One answer to ``messages``. Raises ``ContextOverflow`` before sending if too long."""

    @abstractmethod
    def stream(self, messages: PromptLike, **sampling: Any) -> Iterator[StreamEvent]:
        """Yield text deltas as they come, then one final event carrying the usage.

        A stream that breaks off raises ``BadResponse`` after the deltas already yielded.
        """

    @abstractmethod
    def generate_batch(self, prompts: Sequence[PromptLike], **sampling: Any) -> list[ChatResult]:
        """Answers to many prompts, in input order, run concurrently up to the backend's limit."""

    @abstractmethod
    def count_tokens(self, text_or_messages: PromptLike) -> int:
        """Tokens with the served model's tokenizer. For messages: with the chat template
        applied and the assistant prompt appended (what ``chat`` sends)."""

    @abstractmethod
    def continuation_logprobs(
        self, prompt: str, continuation: str, *, top_k: int = 5
    ) -> ContinuationLogprobs:
        """Per-token log-probabilities of ``continuation`` right after the raw text ``prompt``
        (no chat template). ``top_k`` alternatives are used for the entropy where the
        backend cannot compute it exactly."""

    def continuation_logprobs_batch(
        self, pairs: Sequence[tuple[str, str]], *, top_k: int = 5
    ) -> list[ContinuationLogprobs]:
        """Batched ``continuation_logprobs``; backends override to run the pairs concurrently."""
        return [self.continuation_logprobs(p, c, top_k=top_k) for p, c in pairs]

    @abstractmethod
    def health(self) -> Health:
        """Cheap liveness check; never raises."""

    # -- async callers (Django ASGI views streaming to the browser) ---------------------
    # Defaults run the sync calls on worker threads; HTTP backends run them on their own
    # event loop instead.

    async def achat(self, messages: PromptLike, **sampling: Any) -> ChatResult:
        return await asyncio.to_thread(self.chat, messages, **sampling)

    async def astream(self, messages: PromptLike, **sampling: Any) -> AsyncIterator[StreamEvent]:
        iterator = iter(self.stream(messages, **sampling))
        done = object()
        try:
            while (event := await asyncio.to_thread(next, iterator, done)) is not done:
                yield event  # type: ignore[misc]
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                await asyncio.to_thread(close)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections or threads; the backend is unusable afterwards."""
