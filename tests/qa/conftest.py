"""Fixtures of the QA engine tests: the real embedded model (loaded once), small haystacks.

The needle depth is random per session; set QA_TEST_SEED to replay a run (the seed is in
every assertion message about the haystack).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may reach a hub
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from workers.llm import LLMSettings, create_backend, get_backend  # noqa: E402
from workers.llm.base import LLMBackend, concurrency  # noqa: E402
from workers.qa import Haystack, SourceDocument, build_haystack  # noqa: E402

SEED = int(os.environ.get("QA_TEST_SEED") or random.randrange(1 << 20))
HAYSTACK_TOKENS = 4000


@pytest.fixture(scope="session")
def llm() -> LLMBackend:
    """The embedded SmolLM2-135M (``get_backend()`` with LLM_BACKEND unset)."""
    if (os.environ.get("LLM_BACKEND") or "embedded") == "embedded":
        backend = get_backend()
    else:  # another backend configured for the app: these tests still use the embedded one
        backend = create_backend(LLMSettings())
    backend.count_tokens("warm up")  # loads the model once for the session
    return backend


@pytest.fixture(scope="session")
def haystack(llm: LLMBackend) -> Haystack:
    return build_haystack(HAYSTACK_TOKENS, seed=SEED, count_tokens=llm.count_tokens)


@pytest.fixture(scope="session")
def doc(haystack: Haystack) -> SourceDocument:
    return SourceDocument("hay-1", "Essays with a pass key", haystack.text)


@pytest.fixture
def seed_note(haystack: Haystack) -> str:
    return f"QA_TEST_SEED={SEED} depth={haystack.depth:.2f}"


class Spy(LLMBackend):
    """Delegates to the real backend and records what was sent (not a fake: real answers)."""

    def __init__(self, inner: LLMBackend) -> None:
        self.inner = inner
        # The same model, so the same measured speed (workers/llm/rates.py keys by name and
        # model): a spy changes nothing the engine decides.
        self.name, self.model = inner.name, inner.model
        self.sent: list[Any] = []
        self.scored = 0

    @property
    def context_window(self) -> int:
        return self.inner.context_window

    @property
    def concurrency(self) -> int:  # what the engine sizes its batches and pools by
        return concurrency(self.inner)

    @property
    def capabilities(self):  # noqa: ANN201
        return self.inner.capabilities

    def chat(self, messages, **sampling):  # noqa: ANN001, ANN201
        self.sent.append(messages)
        return self.inner.chat(messages, **sampling)

    def stream(self, messages, **sampling) -> Iterator:  # noqa: ANN001
        self.sent.append(messages)
        return self.inner.stream(messages, **sampling)

    def generate_batch(self, prompts: Sequence, **sampling):  # noqa: ANN201
        return [self.chat(p, **sampling) for p in prompts]

    def count_tokens(self, text_or_messages) -> int:  # noqa: ANN001
        return self.inner.count_tokens(text_or_messages)

    def continuation_logprobs(self, prompt, continuation, *, top_k=5):  # noqa: ANN001, ANN201
        self.scored += 1
        return self.inner.continuation_logprobs(prompt, continuation, top_k=top_k)

    def health(self):  # noqa: ANN201
        return self.inner.health()


@pytest.fixture
def spy(llm: LLMBackend) -> Spy:
    return Spy(llm)


def assert_citations_exact(answer, documents: Sequence[SourceDocument]) -> None:  # noqa: ANN001
    by_id = {d.id: d for d in documents}
    assert answer.citations, "an answer must cite its source"
    for c in answer.citations:
        text = by_id[c.document_id].text
        assert 0 <= c.start < c.end <= len(text)
        assert text[c.start : c.end] == c.quote
