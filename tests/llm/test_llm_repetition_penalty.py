"""The ``repetition_penalty`` sampling option: applied by the embedded model (here) and by
vLLM (``make test-vllm``), sent in vLLM's request body, left out for a generic
OpenAI-compatible server that does not declare it, and validated like every option."""

from __future__ import annotations

import re

import pytest

from tests.llm.llm_fakes import chat_payload
from workers.llm.base import LLMBackend
from workers.llm.openai_compat import OpenAICompatBackend
from workers.llm.vllm_backend import VLLMBackend

STORY = "Write a long story about a dragon."


def _distinct_words(text: str) -> float:
    words = re.findall(r"\w+", text.lower())
    return len(set(words)) / len(words)


def test_a_repetition_penalty_makes_greedy_output_repeat_less(backend: LLMBackend) -> None:
    if not backend.capabilities.repetition_penalty:
        pytest.skip(f"{backend.name} does not declare repetition_penalty")
    plain = backend.chat(STORY, max_tokens=80)
    penalised = backend.chat(STORY, max_tokens=80, repetition_penalty=1.3)
    assert penalised.text != plain.text
    assert _distinct_words(penalised.text) > _distinct_words(plain.text), (plain, penalised)
    # 1.0 is no penalty at all: the greedy answer is unchanged.
    assert backend.chat(STORY, max_tokens=80, repetition_penalty=1.0).text == plain.text


def test_a_bad_repetition_penalty_is_refused(backend: LLMBackend) -> None:
    with pytest.raises(ValueError, match="repetition_penalty"):
        backend.chat("Hi", max_tokens=2, repetition_penalty=0)


@pytest.fixture
def server(scripted_server):
    return scripted_server({
        "/v1/chat/completions": lambda h, b: h.send_json(200, chat_payload("ok")),
        "/tokenize": lambda h, b: h.send_json(200, {"count": 3, "tokens": [1, 2, 3]}),
    })


@pytest.mark.parametrize(("cls", "declared", "sent"), [
    (VLLMBackend, {}, True),  # vLLM's extra sampling parameter
    (OpenAICompatBackend, {}, False),  # not in OpenAI's API: a hint, left out
    (OpenAICompatBackend, {"repetition_penalty": True}, True),  # a server said to take it
])
def test_the_request_body_carries_the_penalty_where_the_server_takes_it(server, cls, declared,
                                                                        sent) -> None:
    backend = cls(server.url, model="fake-model", context_window=1024)
    try:
        backend.with_capabilities(**declared)
        assert backend.capabilities.repetition_penalty is sent
        assert backend.chat("Hi", max_tokens=5, repetition_penalty=1.2).text == "ok"
        backend.chat("Hi", max_tokens=5)
    finally:
        backend.close()
    bodies = [body for path, body in server.requests if path.endswith("/chat/completions")]
    assert bodies[0].get("repetition_penalty") == (1.2 if sent else None)
    assert "repetition_penalty" not in bodies[1]  # not asked: the server's default
