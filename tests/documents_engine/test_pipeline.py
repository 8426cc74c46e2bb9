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
        make_text_pdf(pages), embedder, progress=lambda done, total, _: seen.append((done, total))
    )
    doc, chunks = result.document, result.chunks
    assert result.vectors.shape == (len(chunks), 384)
    np.testing.assert_allclose(np.linalg.norm(result.vectors, axis=1), 1.0, atol=1e-5)
    assert seen[-1][0] == seen[-1][1] == len(chunks)
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
