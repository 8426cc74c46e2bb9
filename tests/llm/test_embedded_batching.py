"""Batched decoding in the embedded backend (``workers/llm/embedded_batch.py``), on the real
model: concurrent requests are decoded together and each gets the text it gets alone."""

from __future__ import annotations

import threading

import pytest

from workers.llm.config import DEFAULT_BATCH_SIZE, embedded_batch_size
from workers.llm.embedded import EmbeddedBackend

# Different lengths on purpose: the shorter prompts are left-padded in the batch.
PROMPTS = [
    "Name a colour.",
    "What is the capital of France? Answer in one sentence.",
    "Write one sentence about the sea and the wind over the old harbour of a small town.",
    "Say hello.",
]


@pytest.fixture(scope="module")
def batched(model_folder) -> EmbeddedBackend:
    return EmbeddedBackend(model_folder.parent, batch_size=4)


def _concurrently(call, n: int) -> dict[int, object]:
    got: dict[int, object] = {}
    start = threading.Barrier(n)

    def run(i: int) -> None:
        start.wait()
        got[i] = call(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return got


def test_concurrent_requests_are_decoded_together_with_the_texts_of_sequential_ones(
    batched: EmbeddedBackend,
) -> None:
    sequential = [batched.chat(p, max_tokens=16) for p in PROMPTS]
    decoder = batched._decoder()
    decoder.peak_batch = 0
    got = _concurrently(lambda i: batched.chat(PROMPTS[i], max_tokens=16), len(PROMPTS))
    assert [got[i].text for i in range(4)] == [r.text for r in sequential]
    assert [got[i].usage for i in range(4)] == [r.usage for r in sequential]
    assert decoder.peak_batch >= 2  # they really shared decode steps


def test_each_stream_gets_its_own_deltas(batched: EmbeddedBackend) -> None:
    expected = [batched.chat(p, max_tokens=12).text for p in PROMPTS[:3]]

    def consume(i: int) -> tuple[str, int]:
        deltas, completion = [], 0
        for event in batched.stream(PROMPTS[i], max_tokens=12):
            deltas.append(event.delta or "")
            if event.usage is not None:
                completion = event.usage.completion_tokens
        return "".join(deltas), completion

    got = _concurrently(consume, 3)
    assert [got[i][0] for i in range(3)] == expected
    assert all(0 < got[i][1] <= 12 for i in range(3))


def test_an_abandoned_stream_leaves_its_companions_intact(batched: EmbeddedBackend) -> None:
    expected = batched.chat(PROMPTS[1], max_tokens=16).text
    long_one = batched.stream("Write a long essay about Rome.", max_tokens=400)
    assert next(long_one).delta is not None
    other = batched.chat(PROMPTS[1], max_tokens=16)  # decoded beside the long stream
    long_one.close()
    assert other.text == expected
    assert batched.chat("Say hi.", max_tokens=3).usage.completion_tokens <= 3


def test_generate_batch_keeps_order_and_per_request_limits(batched: EmbeddedBackend) -> None:
    results = batched.generate_batch(PROMPTS, max_tokens=5)
    assert [r.usage.completion_tokens <= 5 for r in results] == [True] * 4
    assert [r.text for r in results] == [batched.chat(p, max_tokens=5).text for p in PROMPTS]


def test_the_batch_size_is_one_setting() -> None:
    assert embedded_batch_size({}) == DEFAULT_BATCH_SIZE
    assert embedded_batch_size({"LLM_BATCH_SIZE": "3"}) == 3
    assert embedded_batch_size({"LLM_BATCH_SIZE": "0"}) == 1  # at least one row
    assert EmbeddedBackend(batch_size=2).concurrency == 2
