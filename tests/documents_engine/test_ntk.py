"""NTK scaling on a tiny, randomly initialised RoPE model built here (nothing downloaded)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workers.documents.embeddings import Embedder
from workers.documents.longembed import NTKScaling, embed_long, ntk_theta


@pytest.fixture(scope="module")
def rope_embedder(tmp_path_factory, embedder) -> Embedder:
    from transformers import LlamaConfig, LlamaModel

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=embedder.tokenizer.vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
    )
    folder = tmp_path_factory.mktemp("tiny-rope")
    LlamaModel(config).save_pretrained(folder)
    embedder.tokenizer.save_pretrained(folder)  # reuse MiniLM's vocabulary
    rope = Embedder(str(folder))
    assert rope.trained_positions == 256
    return rope


def test_ntk_scales_theta_and_shares_weights(rope_embedder):
    strategy = NTKScaling()
    base = rope_embedder.hf_model
    scaled = strategy.scaled_model(rope_embedder, 4)
    head_dim = 64 // 4
    expected = 1.0 / ntk_theta(10_000.0, 4, head_dim) ** (
        torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim
    )
    torch.testing.assert_close(scaled.rotary_emb.inv_freq.double(), expected, rtol=1e-5, atol=0)
    assert not torch.equal(scaled.rotary_emb.inv_freq, base.rotary_emb.inv_freq)
    assert scaled.embed_tokens.weight.data_ptr() == base.embed_tokens.weight.data_ptr()
    assert strategy.scaled_model(rope_embedder, 4) is scaled  # cached


def test_ntk_embeds_long_input(rope_embedder):
    text = " ".join(f"word{i % 50} and more" for i in range(400))  # ~1,200+ tokens
    assert rope_embedder.count_tokens(text) > 4 * 256 - 100
    v_ntk = embed_long(rope_embedder, [text], "ntk")
    v_plain = embed_long(rope_embedder, [text], "truncate")
    assert v_ntk.shape == (1, 64)
    assert abs(np.linalg.norm(v_ntk) - 1) < 1e-5
    assert float(v_ntk[0] @ v_plain[0]) < 0.9999
    # Short input: no scaling, so identical to the plain model on the same tokens.
    np.testing.assert_allclose(
        embed_long(rope_embedder, ["short"], "ntk"),
        embed_long(rope_embedder, ["short"], "truncate"),
        atol=1e-5,
    )
