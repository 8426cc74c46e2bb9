"""The contract every backend keeps, run against each one (embedded always; vLLM and the
generic OpenAI path with ``-m vllm`` and a server). Generations are short and greedy."""

from __future__ import annotations

import asyncio
import json
import math

import pytest

from workers.llm import CapabilityMissing, ContextOverflow, describe
from workers.llm.base import LLMBackend
from workers.llm.errors import XL3M_NEEDS_LOGPROBS

QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
PROMPT = "The capital of France is"


def test_chat_answers_with_usage(backend: LLMBackend) -> None:
    result = backend.chat(QUESTION, max_tokens=16)
    assert "paris" in result.text.lower()
    assert result.usage.prompt_tokens == backend.count_tokens(QUESTION)
    assert 1 <= result.usage.completion_tokens <= 16
    assert result.finish_reason in {"stop", "length"}


def test_chat_stops_at_max_tokens(backend: LLMBackend) -> None:
    result = backend.chat("Write a long story about a dragon.", max_tokens=3)
    assert result.usage.completion_tokens == 3
    assert result.finish_reason == "length"
    assert result.text


def test_stream_yields_the_same_text_then_usage(backend: LLMBackend) -> None:
    events = list(backend.stream(QUESTION, max_tokens=16))
    *deltas, final = events
    assert deltas and all(e.delta and e.usage is None for e in deltas)
    assert final.is_final and final.delta == ""
    streamed = "".join(e.delta for e in deltas)
    whole = backend.chat(QUESTION, max_tokens=16)
    assert streamed == whole.text  # greedy: streaming must not change the answer
    assert final.usage == whole.usage


def test_stop_string_is_cut_and_not_emitted(backend: LLMBackend) -> None:
    messages = [{"role": "user", "content": "Describe the sea in two sentences."}]
    full = backend.chat(messages, max_tokens=16).text
    words = full.split()
    assert len(words) >= 4, full
    stop = " " + words[3]  # a string the greedy answer is known to contain
    expected = full[: full.index(stop)]
    cut = backend.chat(messages, max_tokens=16, stop=[stop])
    streamed = "".join(e.delta for e in backend.stream(messages, max_tokens=16, stop=[stop]))
    assert cut.text == expected
    assert streamed == expected
    assert cut.finish_reason == "stop"


def test_batch_keeps_order_and_matches_single_calls(backend: LLMBackend) -> None:
    prompts = ["Name a colour.", [{"role": "user", "content": "Name a fruit."}], "Say hello."]
    batch = backend.generate_batch(prompts, max_tokens=8)
    assert len(batch) == 3
    singles = [backend.chat(p, max_tokens=8) for p in prompts]
    assert [r.text for r in batch] == [r.text for r in singles]
    assert all(r.usage.completion_tokens >= 1 for r in batch)


def test_count_tokens_uses_the_models_tokenizer(backend: LLMBackend, reference_tokenizer) -> None:
    text = "Scriptorium reads long documents, sentence by sentence."
    assert backend.count_tokens(text) == len(reference_tokenizer(text)["input_ids"])
    expected = reference_tokenizer.apply_chat_template(
        QUESTION, add_generation_prompt=True, tokenize=True, return_dict=True
    )["input_ids"]
    assert backend.count_tokens(QUESTION) == len(expected)


def test_overflow_is_refused_with_counts(backend: LLMBackend) -> None:
    window = backend.context_window
    long_text = "lorem " * (window + 10)
    with pytest.raises(ContextOverflow) as caught:
        backend.chat(long_text, max_tokens=8)
    assert caught.value.context_window == window
    assert caught.value.prompt_tokens == backend.count_tokens(
        [{"role": "user", "content": long_text}]
    )
    assert caught.value.prompt_tokens > window


def test_prompt_that_leaves_no_room_for_the_output_is_refused(backend: LLMBackend) -> None:
    window = backend.context_window
    with pytest.raises(ContextOverflow):
        backend.chat("Hello", max_tokens=window)


def test_likely_continuation_has_higher_logprob(backend: LLMBackend, reference_tokenizer) -> None:
    if not backend.capabilities.prompt_logprobs:
        with pytest.raises(CapabilityMissing, match=XL3M_NEEDS_LOGPROBS):
            backend.continuation_logprobs(PROMPT, " Paris")
        return
    likely = backend.continuation_logprobs(PROMPT, " Paris, the city of light.")
    unlikely = backend.continuation_logprobs(PROMPT, " a purple refrigerator sandwich.")
    assert likely.mean_nll < unlikely.mean_nll
    assert likely.logprobs[0] > unlikely.logprobs[0]
    # One value per continuation token, as the model's tokenizer splits it.
    prompt_ids = reference_tokenizer(PROMPT)["input_ids"]
    full_ids = reference_tokenizer(PROMPT + " Paris, the city of light.")["input_ids"]
    assert likely.token_ids == full_ids[len(prompt_ids) :]
    assert len(likely.logprobs) == len(likely.tokens) == len(likely.token_ids)
    assert likely.start == len(prompt_ids)
    assert "".join(likely.tokens) == " Paris, the city of light."
    assert all(lp <= 0 for lp in likely.logprobs)
    assert likely.usage.prompt_tokens == len(full_ids)
    assert likely.entropies is not None and len(likely.entropies) == len(likely.logprobs)
    assert all(0 <= h <= math.log(len(reference_tokenizer)) + 1e-3 for h in likely.entropies)


def test_logprobs_boundary_inside_a_word(backend: LLMBackend, reference_tokenizer) -> None:
    if not backend.capabilities.prompt_logprobs:
        pytest.skip("no prompt log-probabilities on this backend")
    prompt, continuation = "The weather is beauti", "ful today."
    result = backend.continuation_logprobs(prompt, continuation)
    prompt_ids = reference_tokenizer(prompt)["input_ids"]
    # The tokenizer merges across the cut: the continuation starts at the merged token.
    assert result.start <= len(prompt_ids)
    assert "".join(result.tokens).endswith(continuation)
    assert len(result.logprobs) == len(result.token_ids) >= 1


def test_batched_logprobs_match_single_calls(backend: LLMBackend) -> None:
    if not backend.capabilities.prompt_logprobs:
        pytest.skip("no prompt log-probabilities on this backend")
    pairs = [(PROMPT, " Paris."), ("Two plus two equals", " four."), (PROMPT, " Berlin.")]
    batch = backend.continuation_logprobs_batch(pairs)
    singles = [backend.continuation_logprobs(p, c) for p, c in pairs]
    for got, want in zip(batch, singles, strict=True):
        assert got.token_ids == want.token_ids
        assert got.logprobs == pytest.approx(want.logprobs, abs=0.05)
    assert batch[0].total_logprob > batch[2].total_logprob


def test_structured_output_or_capability_missing(backend: LLMBackend) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "enum": ["Paris", "London", "Rome"]}},
        "required": ["city"],
        "additionalProperties": False,
    }
    if not backend.capabilities.guided_json:
        with pytest.raises(CapabilityMissing):
            backend.chat(QUESTION, max_tokens=20, json_schema=schema)
        return
    result = backend.chat(QUESTION, max_tokens=20, json_schema=schema)
    assert json.loads(result.text)["city"] in {"Paris", "London", "Rome"}


def test_health_and_describe(backend: LLMBackend) -> None:
    assert backend.health().healthy
    info = describe(backend)
    assert info["healthy"] is True and info["error"] is None
    assert info["backend"] == backend.name
    assert info["context_window"] == backend.context_window > 0
    assert info["capabilities"] == backend.capabilities.as_dict()


def test_unknown_sampling_option_is_rejected(backend: LLMBackend) -> None:
    with pytest.raises(TypeError, match="max_new_tokens"):
        backend.chat("Hi", max_new_tokens=5)


def test_async_api_gives_the_same_answers(backend: LLMBackend) -> None:
    async def run() -> tuple[str, str]:
        answer = await backend.achat(QUESTION, max_tokens=8)
        pieces = [e.delta async for e in backend.astream(QUESTION, max_tokens=8)]
        return answer.text, "".join(pieces)

    answer, streamed = asyncio.run(run())
    assert answer == streamed == backend.chat(QUESTION, max_tokens=8).text
