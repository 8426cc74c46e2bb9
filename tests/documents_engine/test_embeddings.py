"""Embedder and LongEmbed strategies on the embedded MiniLM (loaded once per session)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from workers.documents.longembed import (
    STRATEGIES,
    StrategyNotApplicable,
    embed_long,
    get_strategy,
    interpolate_positions,
)
from workers.documents.synth import filler_text


@pytest.fixture(scope="module")
def long_text(embedder) -> str:
    text = filler_text(12_000, random.Random(4))
    ids = embedder.token_ids(text)
    assert len(ids) >= 2000
    return embedder.tokenizer.decode(ids[:2000])


def test_embedder_basics(embedder):
    assert embedder.dim == 384
    assert embedder.trained_positions == 512
    assert embedder.max_seq_length == 256
    v = embedder.embed(["a short sentence", "another one"])
    assert v.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert embedder.count_tokens("hello world") == 2


def test_embed_ids_matches_sentence_transformers(embedder):
    texts = ["The cat sat on the mat.", "Quarterly revenue grew by ten percent in spring."]
    ours = embedder.embed_ids([embedder.token_ids(t) for t in texts])
    np.testing.assert_allclose(ours, embedder.embed(texts), atol=1e-5)


@pytest.mark.parametrize("name", ["truncate", "pcw", "pi"])
def test_strategies_give_normalised_vectors_for_2000_tokens(embedder, long_text, name):
    v = embed_long(embedder, [long_text], strategy=name)
    assert v.shape == (1, 384)
    assert np.isfinite(v).all()
    assert abs(np.linalg.norm(v[0]) - 1.0) < 1e-5


def test_pcw_and_pi_differ_from_truncate_only_on_long_input(embedder, long_text):
    short = "A short text well inside the trained window."
    vectors = {
        name: embed_long(embedder, [long_text, short], name) for name in STRATEGIES if name != "ntk"
    }
    for name in ("pcw", "pi"):
        assert float(vectors[name][0] @ vectors["truncate"][0]) < 0.999
        np.testing.assert_allclose(vectors[name][1], vectors["truncate"][1], atol=1e-5)


def test_passkey_beyond_512_tokens_truncate_fails_pcw_and_pi_succeed(embedder):
    """Candidates share their first ~600 tokens; each has its own pass key after that.

    Truncation sees only the shared part, so it is at chance; pcw and pi see the key. Neither
    is perfect on this model (a miss in 6 is typical), hence the 75% bar.
    """
    names = ["Alice", "Bob", "Carol", "Dmitri", "Esther", "Farouk"]
    queries = embedder.embed([f"What is the pass key of {n}?" for n in names])
    hits = {"truncate": 0, "pcw": 0, "pi": 0}
    for seed in (0,):
        rng = random.Random(seed)
        prefix, suffix = filler_text(2_700, rng), filler_text(400, rng)
        assert embedder.count_tokens(prefix) > 512
        docs = []
        for name in names:
            key = rng.randint(10_000, 99_999)
            docs.append(
                f"{prefix}\n\n{name}'s pass key is {key}. Remember it. {key} is the pass key "
                f"of {name}.\n\n{suffix}"
            )
        for strategy in hits:
            vectors = embed_long(embedder, docs, strategy)
            if strategy == "truncate":
                assert np.ptp(vectors, axis=0).max() < 1e-6  # cannot tell the docs apart
            best = np.argmax(queries @ vectors.T, axis=1)
            hits[strategy] += int((best == np.arange(len(names))).sum())
    total = len(names)
    assert hits["truncate"] <= 1  # ties: argmax picks the first candidate every time
    assert hits["pcw"] >= 0.75 * total
    assert hits["pi"] >= 0.75 * total


def test_interpolate_positions():
    table = torch.arange(12, dtype=torch.float32).reshape(4, 3)  # 4 positions
    stretched = interpolate_positions(table, 7)  # every half position
    assert stretched.shape == (7, 3)
    torch.testing.assert_close(stretched[0], table[0])
    torch.testing.assert_close(stretched[-1], table[-1])
    torch.testing.assert_close(stretched[1], (table[0] + table[1]) / 2)
    torch.testing.assert_close(interpolate_positions(table, 3), table[:3])


def test_ntk_refuses_absolute_position_models(embedder):
    with pytest.raises(StrategyNotApplicable, match="absolute"):
        embed_long(embedder, ["text"], "ntk")


def test_unknown_strategy():
    with pytest.raises(ValueError, match="choose from"):
        get_strategy("magic")


def test_embed_with_spans_gives_the_text_vector_and_one_per_sentence(embedder):
    """One forward pass, two granularities: the text's vector is ``embed``'s, each span's
    is the mean of its own contextual tokens (normalised), closest to its own sentence."""
    from workers.documents.chunking import sentence_windows

    text = ("The harbour was busy and the ships came in at dawn. "
            "To open the archive door, type the digits 48213. "
            "The bakers complained loudly about the price of flour that winter.")
    spans = sentence_windows(text)
    assert len(spans) == 3
    vectors, per_text = embedder.embed_with_spans([text, "Short one."], [spans, []])
    assert np.allclose(vectors, embedder.embed([text, "Short one."]), atol=1e-5)
    assert per_text[1].shape == (0, embedder.dim)
    fine = per_text[0]
    assert np.allclose(np.linalg.norm(fine, axis=1), 1.0, atol=1e-5)
    own = embedder.embed([text[s:e] for s, e in spans])
    similarity = own @ fine.T  # row: a sentence on its own; column: its late-pooled vector
    assert all(int(np.argmax(similarity[i])) == i for i in range(3))


def test_spans_past_the_window_get_no_vector(embedder):
    """The model reads 256 tokens: a span beyond them gets zeros (``embed_chunks`` embeds
    such spans on their own)."""
    text = "word " * 400 + "The last sentence is far past the window."
    start = text.index("The last")
    _, per_text = embedder.embed_with_spans([text], [[(0, 20), (start, len(text))]])
    assert per_text[0][0].any() and not per_text[0][1].any()
