"""Failures of the HTTP backends against local servers that fail on purpose.

A healthy server cannot be made to hang, cut a stream or answer 503 on demand, so these
use the small servers of ``llm_fakes``; the vLLM suite repeats the stream cut against a
real vLLM killed mid-answer.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.llm.llm_fakes import chat_payload, free_port, models_payload, sse_event
from workers.llm import (
    BackendTimeout,
    BackendUnavailable,
    BadResponse,
    CapabilityMissing,
    ContextOverflow,
    InvalidRequest,
    describe,
)
from workers.llm.errors import XL3M_NEEDS_LOGPROBS
from workers.llm.openai_compat import OpenAICompatBackend
from workers.llm.vllm_backend import VLLMBackend


@pytest.fixture
def make_backend():
    made: list[OpenAICompatBackend] = []

    def make(url: str, cls=OpenAICompatBackend, **kwargs):  # type: ignore[no-untyped-def]
        kwargs.setdefault("model", "fake-model")
        kwargs.setdefault("context_window", 1024)
        backend = cls(url, **kwargs)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()


def test_closed_port_is_unavailable_after_retries(make_backend) -> None:
    backend = make_backend(f"http://127.0.0.1:{free_port()}", max_attempts=2)
    with pytest.raises(BackendUnavailable, match="cannot connect"):
        backend.chat("Hi", max_tokens=4)
    health = backend.health()
    assert not health.healthy and "BackendUnavailable" in (health.error or "")
    info = describe(backend)
    assert info["healthy"] is False and info["error"]


def test_silent_server_times_out_and_is_retried(make_backend, silent_server) -> None:
    backend = make_backend(silent_server.url, timeout=0.5, max_attempts=2)
    started = time.monotonic()
    with pytest.raises(BackendTimeout):
        backend.chat("Hi", max_tokens=4)
    assert silent_server.connections == 2  # the timeout is transient: tried twice
    assert time.monotonic() - started < 10


def test_stream_cut_without_done_is_bad_response(make_backend, scripted_server) -> None:
    def cut_stream(handler, body):
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
        handler.send_raw(head + sse_event("Once") + sse_event(" upon"))  # no [DONE]

    server = scripted_server({"/v1/chat/completions": cut_stream})
    backend = make_backend(server.url, max_attempts=3)
    received = []
    with pytest.raises(BadResponse, match="without \\[DONE\\]"):
        for event in backend.stream("Tell a story", max_tokens=50):
            received.append(event.delta)
    assert received == ["Once", " upon"]  # what came is delivered before the error
    # Not retried once text was handed out: a retry would repeat it.
    assert server.paths().count("/v1/chat/completions") == 1


def test_stream_cut_inside_a_chunk_is_bad_response(make_backend, scripted_server) -> None:
    def broken_chunk(handler, body):
        event = sse_event("Once")
        handler.send_raw(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
            + f"{len(event):x}\r\n".encode()
            + event
            + b"\r\n"
            + b'400\r\ndata: {"choi'  # promises 1024 bytes, sends 13, hangs up
        )

    server = scripted_server({"/v1/chat/completions": broken_chunk})
    backend = make_backend(server.url)
    received = []
    with pytest.raises(BadResponse, match="broke off"):
        for event in backend.stream("Tell a story", max_tokens=50):
            received.append(event.delta)
    assert received == ["Once"]


def test_malformed_json_is_bad_response(make_backend, scripted_server) -> None:
    def not_json(handler, body):
        handler.send_raw(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n"
            b'{"choices'
        )

    server = scripted_server({"/v1/chat/completions": not_json})
    backend = make_backend(server.url, max_attempts=1)
    with pytest.raises(BadResponse, match="not JSON"):
        backend.chat("Hi", max_tokens=4)


def test_answer_without_choices_is_bad_response(make_backend, scripted_server) -> None:
    server = scripted_server(
        {"/v1/chat/completions": lambda h, b: h.send_json(200, {"usage": {"prompt_tokens": 1}})}
    )
    with pytest.raises(BadResponse, match="unexpected chat answer"):
        make_backend(server.url, max_attempts=1).chat("Hi", max_tokens=4)


def test_503_is_retried_then_unavailable(make_backend, scripted_server) -> None:
    server = scripted_server(
        {"/v1/chat/completions": lambda h, b: h.send_json(503, {"error": "overloaded"})}
    )
    with pytest.raises(BackendUnavailable, match="503"):
        make_backend(server.url, max_attempts=2).chat("Hi", max_tokens=4)
    assert server.paths().count("/v1/chat/completions") == 2


def test_transient_failure_then_success(make_backend, scripted_server) -> None:
    calls = []

    def flaky(handler, body):
        calls.append(1)
        if len(calls) == 1:
            handler.send_json(503, {"error": "warming up"})
        else:
            handler.send_json(200, chat_payload("recovered"))

    server = scripted_server({"/v1/chat/completions": flaky})
    result = make_backend(server.url, max_attempts=3).chat("Hi", max_tokens=4)
    assert result.text == "recovered" and len(calls) == 2


def test_404_is_not_retried(make_backend, scripted_server) -> None:
    server = scripted_server({})
    with pytest.raises(InvalidRequest, match="404"):
        make_backend(server.url, max_attempts=3).chat("Hi", max_tokens=4)
    assert len(server.paths()) == 1


def test_server_side_overflow_maps_to_context_overflow(make_backend, scripted_server) -> None:
    message = {"error": {"message": "This model's maximum context length is 1024 tokens."}}
    server = scripted_server({"/v1/chat/completions": lambda h, b: h.send_json(400, message)})
    with pytest.raises(ContextOverflow, match="maximum context length"):
        make_backend(server.url, max_attempts=3).chat("Hi", max_tokens=4)
    assert len(server.paths()) == 1  # permanent: not retried


def test_overflow_is_refused_before_sending(make_backend, scripted_server) -> None:
    server = scripted_server(
        {
            "/v1/models": lambda h, b: h.send_json(200, models_payload(window=1024)),
            # The served tokenizer says the prompt is 2,000 tokens.
            "/tokenize": lambda h, b: h.send_json(200, {"count": 2000, "tokens": [7] * 2000}),
            "/v1/chat/completions": lambda h, b: h.send_json(200, chat_payload("should not run")),
        }
    )
    backend = make_backend(server.url, cls=VLLMBackend, context_window=None)
    with pytest.raises(ContextOverflow) as caught:
        backend.chat("a long prompt", max_tokens=16)
    assert (caught.value.prompt_tokens, caught.value.context_window) == (2000, 1024)
    assert "/v1/chat/completions" not in server.paths()
    assert "/tokenize" in server.paths()


def test_batch_respects_the_concurrency_limit(make_backend, scripted_server) -> None:
    def slow_echo(handler, body):
        handler.server.track(0.3)
        handler.send_json(200, chat_payload(body["messages"][-1]["content"].upper()))

    server = scripted_server({"/v1/chat/completions": slow_echo})
    backend = make_backend(server.url, concurrency=2)
    prompts = [f"item {i}" for i in range(6)]
    started = time.monotonic()
    results = backend.generate_batch(prompts, max_tokens=4)
    elapsed = time.monotonic() - started
    assert [r.text for r in results] == [p.upper() for p in prompts]
    assert server.max_in_flight == 2
    assert 0.85 < elapsed < 3.0  # 3 waves of 0.3 s: concurrent, but limited


def test_generic_server_without_logprobs_says_what_is_missing(make_backend) -> None:
    backend = make_backend(f"http://127.0.0.1:{free_port()}")
    assert not backend.capabilities.prompt_logprobs
    with pytest.raises(CapabilityMissing, match=XL3M_NEEDS_LOGPROBS):
        backend.continuation_logprobs("The capital of France is", " Paris")
    with pytest.raises(CapabilityMissing, match="LLM_TOKENIZER"):
        backend.count_tokens("hello")


def test_request_body_follows_the_openai_api(make_backend, scripted_server) -> None:
    server = scripted_server(
        {
            "/v1/chat/completions": lambda h, b: h.send_json(200, chat_payload("{}")),
        }
    )
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    backend = make_backend(server.url, api_key="sk-test")
    result = backend.chat("Hi", max_tokens=7, temperature=0.5, stop="END", json_schema=schema)
    assert result.usage.prompt_tokens == 5 and result.usage.completion_tokens == 3
    _, body = server.requests[-1]
    assert body["max_tokens"] == 7 and body["temperature"] == 0.5 and body["stop"] == ["END"]
    assert body["response_format"]["json_schema"]["schema"] == schema
    assert json.dumps(body["messages"]) == json.dumps([{"role": "user", "content": "Hi"}])


def test_sync_api_is_safe_from_many_threads(make_backend, scripted_server) -> None:
    import threading

    def echo(handler, body):
        handler.server.track(0.05)
        handler.send_json(200, chat_payload(body["messages"][-1]["content"]))

    server = scripted_server({"/v1/chat/completions": echo})
    backend = make_backend(server.url, concurrency=4)
    got: dict[int, str] = {}

    def call(i: int) -> None:
        got[i] = backend.chat(f"thread {i}", max_tokens=2).text

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert got == {i: f"thread {i}" for i in range(8)}
    assert 1 < server.max_in_flight <= 4


def test_health_is_quick_against_a_silent_server(make_backend, silent_server) -> None:
    backend = make_backend(silent_server.url, timeout=60, max_attempts=3, context_window=None)
    started = time.monotonic()
    health = backend.health()
    assert not health.healthy and "BackendTimeout" in (health.error or "")
    assert time.monotonic() - started < 8  # one try, short timeout: not 3 x 60 s
    assert silent_server.connections == 1
