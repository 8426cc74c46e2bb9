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
    """Lone requests padded to two rows in their matrix products (``_RowPad``), so that a
    one-at-a-time text is what batching must reproduce on any CPU: these tests check the
    batching (padding, positions, ragged attention), not BLAS's one-row rounding."""
    return EmbeddedBackend(model_folder.parent, batch_size=4, pad_lone_rows=True)


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


def _rows_per_step(backend: EmbeddedBackend, call) -> list[int]:  # type: ignore[no-untyped-def]
    """The rows of every decode step (one-token forward pass) of the model while ``call``
    runs, as the model's own input shows them."""
    model, _ = backend._loaded()
    seen: list[int] = []

    def record(module, args, kwargs):  # type: ignore[no-untyped-def]
        ids = kwargs.get("input_ids")
        if ids is not None and ids.shape[1] == 1:
            seen.append(int(ids.shape[0]))

    hook = model.register_forward_pre_hook(record, with_kwargs=True)
    try:
        call()
    finally:
        hook.remove()
    return seen


def test_a_lone_request_is_decoded_alone_not_beside_a_copy(model_folder) -> None:
    # The default: one row a step, nothing padded, at any batch size.
    for size in (3, 1):
        backend = EmbeddedBackend(model_folder.parent, batch_size=size)
        decoder = backend._decoder()
        rows = _rows_per_step(backend, lambda b=backend: b.chat(PROMPTS[0], max_tokens=6))
        assert rows and set(rows) == {1}
        assert decoder.padded_steps == 0 and decoder.lone_steps >= len(rows)


def test_padding_a_lone_row_touches_only_its_matrix_products(batched: EmbeddedBackend) -> None:
    # pad_lone_rows: the model still runs one row a step (its KV cache and attention are
    # its own); only the linear layers see two.
    decoder = batched._decoder()
    padded_before = decoder.padded_steps
    rows = _rows_per_step(batched, lambda: batched.chat(PROMPTS[0], max_tokens=6))
    assert rows and set(rows) == {1}
    assert decoder.padded_steps - padded_before == len(rows)


def test_concurrent_requests_share_steps_of_several_rows(batched: EmbeddedBackend) -> None:
    got: dict[int, object] = {}

    def both() -> None:
        got.update(_concurrently(lambda i: batched.chat(PROMPTS[i], max_tokens=8), 3))

    rows = _rows_per_step(batched, both)
    assert max(rows) >= 2
    assert all(got[i].usage.completion_tokens > 0 for i in range(3))


def test_one_query_attention_equals_sdpa_with_grouped_heads() -> None:
    import torch
    from torch.nn.functional import scaled_dot_product_attention

    from workers.llm.embedded_batch import _one_query_attention

    gen = torch.Generator().manual_seed(0)
    query = torch.randn(1, 9, 1, 64, generator=gen)
    buffer = torch.randn(2, 1, 3, 40, 64, generator=gen)  # keys, values with room left
    key, value = buffer[0][:, :, :33], buffer[1][:, :, :33]
    expected = scaled_dot_product_attention(query, key, value, scale=0.125, enable_gqa=True)
    got = _one_query_attention(query, key, value, 0.125)
    assert got.shape == (1, 1, 9, 64)
    assert torch.allclose(got, expected.transpose(1, 2), atol=1e-5)


def test_the_growing_cache_equals_concatenation_and_keeps_its_buffer() -> None:
    import torch

    from workers.llm.embedded_batch import _rebuild

    gen = torch.Generator().manual_seed(1)
    keys, values = torch.randn(2, 3, 5, 4, generator=gen), torch.randn(2, 3, 5, 4, generator=gen)
    cache = _rebuild([(keys, values)], room=2)
    layer = cache.layers[0]
    start = layer.keys.data_ptr()
    for step in range(4):  # the last two go past the room: the buffer grows
        k, v = torch.randn(2, 3, 1, 4, generator=gen), torch.randn(2, 3, 1, 4, generator=gen)
        got_k, got_v = cache.update(k, v, 0)
        keys, values = torch.cat([keys, k], dim=-2), torch.cat([values, v], dim=-2)
        assert torch.equal(got_k, keys) and torch.equal(got_v, values)
        assert cache.get_seq_length() == 6 + step
        if step < 2:
            assert layer.keys.data_ptr() == start  # written in place, not copied
