"""Fixtures of the SCOPE engine tests: the real embedded model and the real embedder."""

from __future__ import annotations

import pytest

from tests.qa.conftest import Spy, llm  # noqa: F401 - the session's embedded model
from workers.llm.base import ChatResult, LLMBackend, Usage


@pytest.fixture(scope="session")
def embedder():
    from workers.documents.embeddings import get_embedder

    return get_embedder()


class BrokenRewrites(Spy):
    """The real backend, except that every generated text is replaced by ``reply``: a
    model that answers with nothing, or with more than it was given (a failure that the
    real model cannot be made to produce on demand)."""

    def __init__(self, inner: LLMBackend, reply: str) -> None:
        super().__init__(inner)
        self.name, self.reply = "broken", reply
        self.calls = 0

    def chat(self, messages, **sampling) -> ChatResult:  # noqa: ANN001
        self.calls += 1
        return ChatResult(self.reply, Usage(self.count_tokens(messages), 1), "stop")
