"""One strategy run: the backend calls it makes, their usage, the trace and progress.

Strategies call the model only through ``Run`` so that every call is counted in the
trace and the usage totals, and so that progress/cancellation is checked between steps.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from workers.llm.base import ContinuationLogprobs, LLMBackend, Usage
from workers.llm.rates import record_call
from workers.progress import Progress, no_progress
from workers.writing.length import REPETITION_PENALTY, length_score, write_to_length

from .types import TokenCallback, TraceStep

log = logging.getLogger(__name__)

# The step being recorded, so that code without the Run (a scoring helper) can note on it.
_current_step: ContextVar[TraceStep | None] = ContextVar("qa_trace_step", default=None)


def arm_failed(arm: str, exc: BaseException) -> None:
    """An optional arm (the embedder's ranking, ...) failed and the answer goes on without
    it: logged with its traceback and noted on the current trace step (``unavailable``),
    so a broken configuration shows in every answer's trace instead of passing unseen."""
    log.warning("%s unavailable: %s: %s", arm, type(exc).__name__, exc, exc_info=exc)
    step = _current_step.get()
    if step is not None:
        step.notes.setdefault("unavailable", {})[arm] = f"{type(exc).__name__}: {exc}"


class Run:
    def __init__(
        self,
        backend: LLMBackend,
        progress: Progress | None = None,
        on_token: TokenCallback | None = None,
    ) -> None:
        self.backend = backend
        self.progress: Progress = progress or no_progress
        self.on_token = on_token
        self.steps: list[TraceStep] = []
        self.usage = Usage()
        self._current: TraceStep | None = None
        # Words the user asked for ("in 300 words"): the final answer is written to length.
        self.target_words: int | None = None
        # SCOPE stage: read this many times more text, compressed into the same budget.
        self.compress_ratio: float | None = None
        # The last answer call stopped at its token room ("length"), and what was cut.
        self.last_finish: str | None = None
        self.shortened = False

    # -- trace ---------------------------------------------------------------------------

    @contextmanager
    def step(self, name: str, **inputs: Any) -> Iterator[TraceStep]:
        record = TraceStep(name=name, inputs=inputs)
        outer, self._current = self._current, record
        token = _current_step.set(record)
        began = time.perf_counter()
        try:
            yield record
        finally:
            record.seconds = round(time.perf_counter() - began, 3)
            self._current = outer
            _current_step.reset(token)
            self.steps.append(record)

    def add_usage(self, usage: Usage, seconds: float | None = None) -> None:
        """Count a model call's tokens; with its ``seconds``, record it for the rates that
        estimates before a question are made from (``workers.llm.rates``)."""
        self.usage = self.usage + usage
        if seconds is not None:
            record_call(self.backend, usage, seconds)
        if self._current is not None:
            self._current.tokens_in += usage.prompt_tokens
            self._current.tokens_out += usage.completion_tokens

    def fork(self) -> Run:
        """A run for calls made in another thread beside this one's: its own usage and
        steps, taken back into this run's current step by ``absorb`` (a Run's totals and
        trace are written from one thread only)."""
        return Run(self.backend)

    def absorb(self, forked: Run) -> None:
        """Count a forked run's tokens in the current step, with the arms it lost."""
        self.add_usage(forked.usage)  # its calls' speeds were recorded as they ran
        lost = {k: v for s in forked.steps for k, v in s.notes.get("unavailable", {}).items()}
        if lost and self._current is not None:
            self._current.notes.setdefault("unavailable", {}).update(lost)

    def check(self, current: int, total: int, message: str) -> None:
        """A step boundary: report progress; the callable may raise ``Cancelled``."""
        self.progress(current, total, message)

    # -- model calls ---------------------------------------------------------------------

    def chat(self, messages: Sequence[dict[str, str]], max_tokens: int) -> str:
        started = time.perf_counter()
        result = self.backend.chat(list(messages), max_tokens=max_tokens, temperature=0)
        self.add_usage(result.usage, time.perf_counter() - started)
        self.last_finish = result.finish_reason
        return result.text.strip()

    def chat_streamed(self, messages: Sequence[dict[str, str]], max_tokens: int) -> str:
        """The final answer: streamed to ``on_token`` when the caller wants deltas."""
        if self.on_token is None:
            return self.chat(messages, max_tokens)
        parts: list[str] = []
        started, first = time.perf_counter(), None
        for event in self.backend.stream(list(messages), max_tokens=max_tokens, temperature=0):
            if event.delta:
                first = first or time.perf_counter()
                # Leading whitespace is dropped so that the deltas add up to the answer text.
                delta = event.delta if parts else event.delta.lstrip()
                if delta:
                    parts.append(delta)
                    self.on_token(delta)
            if event.usage is not None:
                self._add_streamed(event.usage, started, first, time.perf_counter())
            if event.finish_reason:
                self.last_finish = event.finish_reason
        return "".join(parts).rstrip()

    def _add_streamed(self, usage: Usage, started: float, first: float | None,
                      ended: float) -> None:
        """A streamed call's usage; its speed recorded as two calls — the prompt read until
        the first token, the rest written after it — so reading and writing are measured
        apart (the estimates' rates fit far better than from whole calls)."""
        self.add_usage(usage)
        if first is None or usage.completion_tokens < 2:
            record_call(self.backend, usage, ended - started)
            return
        record_call(self.backend, Usage(usage.prompt_tokens, 1), first - started)
        record_call(self.backend, Usage(0, usage.completion_tokens - 1), ended - first,
                    window=usage.prompt_tokens)

    def chat_to_length(self, messages: Sequence[dict[str, str]], words: int) -> tuple[str, dict]:
        """The final answer written to ``words`` words (count, continue, trim), streamed."""
        result = write_to_length(self.backend, list(messages), words, on_token=self.on_token,
                                 repetition_penalty=REPETITION_PENALTY)
        self.add_usage(result.usage)
        notes = {"target_words": words, "words": result.words, "rounds": result.rounds,
                 "length_score": round(length_score(words, result.words), 1)}
        return result.text, notes

    def emit(self, text: str) -> None:
        """Send a whole answer at once (answers rewritten by extraction are not streamed)."""
        if self.on_token is not None and text:
            self.on_token(text)

    def score(
        self, pairs: Sequence[tuple[str, str]], batch_size: int = 8
    ) -> list[ContinuationLogprobs]:
        """Batched continuation log-probabilities (XL3M's scan)."""
        out: list[ContinuationLogprobs] = []
        for i in range(0, len(pairs), batch_size):
            started = time.perf_counter()
            results = self.backend.continuation_logprobs_batch(list(pairs[i : i + batch_size]))
            self.add_usage(sum((r.usage for r in results), Usage()),
                           time.perf_counter() - started)
            out.extend(results)
        return out

    def count(self, text_or_messages: Any) -> int:
        return self.backend.count_tokens(text_or_messages)
