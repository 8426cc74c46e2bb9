"""End to end: bytes → document → chunks with pages and headings → vectors."""

from __future__ import annotations

import random

import numpy as np

from workers.documents.pipeline import ingest_bytes
from workers.documents.synth import filler_text, make_text_pdf


def test_ingest_pdf(embedder):
    rng = random.Random(9)
    pages = [filler_text(1200, rng) for _ in range(4)]
    seen = []
    result = ingest_bytes(
        make_text_pdf(pages), embedder,
        progress=lambda done, total, message: seen.append((done, total, message)),
    )
    doc, chunks = result.document, result.chunks
    assert result.vectors.shape == (len(chunks), 384)
    np.testing.assert_allclose(np.linalg.norm(result.vectors, axis=1), 1.0, atol=1e-5)
    assert seen[0] == (10, 100, f"Extracted 4 pages, {doc.stats.words:,} words")
    assert [done for done, _, _ in seen] == sorted(done for done, _, _ in seen)
    assert seen[-1] == (100, 100, f"Embedded {len(chunks)} of {len(chunks)} chunks")
    assert {p for c in chunks for p in c.pages} == {1, 2, 3, 4}
    for c in chunks:
        assert doc.text[c.start : c.end] == c.text
        assert c.tokens <= 254  # the pipeline's 256 minus [CLS] and [SEP]
        assert c.pages == doc.pages_for_span(c.start, c.end)


def test_ingest_markdown_chunks_know_their_heading(embedder):
    md = "# Intro\n\nHello there. " + "\n\n## Details\n\n" + "More words here. " * 300
    result = ingest_bytes(md.encode(), embedder, max_tokens=100)
    assert result.chunks[0].heading == "Intro"
    assert result.chunks[-1].heading == "Details"


def test_chunks_past_the_window_are_embedded_with_longembed(embedder):
    """The one ingest path holds the LongEmbed branch: chunks longer than the model's
    window get the chosen strategy's vector, not a truncated one."""
    from workers.documents.longembed import embed_long

    text = filler_text(5000, random.Random(3))
    result = ingest_bytes(text.encode(), embedder, max_tokens=600, long_strategy="pcw",
                          sandboxed=False)
    long = [i for i, c in enumerate(result.chunks) if c.tokens > 254]
    assert long, "no chunk past the window: the test proves nothing"
    for i in long:
        expected = embed_long(embedder, [result.chunks[i].text], "pcw")[0]
        np.testing.assert_allclose(result.vectors[i], expected, atol=1e-5)
        truncated = embedder.embed([result.chunks[i].text])[0]
        assert not np.allclose(result.vectors[i], truncated, atol=1e-3)
