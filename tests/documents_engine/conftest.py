from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def embedder():
    """The embedded MiniLM, loaded once for the whole session."""
    from workers.documents.embeddings import get_embedder

    e = get_embedder()
    _ = e.model
    return e
