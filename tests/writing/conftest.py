"""Fixtures of the writing engine tests: the real embedded model (loaded once) and a
backend wrapper that can fail the ways a model fails (empty answers, unusable plans)."""

from __future__ import annotations

from collections.abc import Iterator

from tests.qa.conftest import Spy, llm  # noqa: F401 - llm: the real model, loaded once
from workers.llm.base import ChatResult, LLMBackend, StreamEvent, Usage


class Canned(Spy):
    """The real backend's tokenizer and window, but answers from a script: the failures a
    model can produce and a test cannot provoke on demand (an empty answer, a plan that
    is not one). ``answers`` are used in turn; the last repeats."""

    concurrency = 1  # in turn: asked one at a time, or the turns would race

    def __init__(self, inner: LLMBackend, answers: list[str]) -> None:
        super().__init__(inner)
        self.name, self.answers, self.calls = "canned", answers, 0

    def _next(self) -> str:
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        return answer

    def chat(self, messages, **sampling) -> ChatResult:  # noqa: ANN001
        text = self._next()
        return ChatResult(text, Usage(self.count_tokens(messages), self.count_tokens(text)), "stop")

    def stream(self, messages, **sampling) -> Iterator[StreamEvent]:  # noqa: ANN001
        text = self._next()
        for word in text.split(" "):
            yield StreamEvent(delta=word + " ")
        yield StreamEvent(usage=Usage(self.count_tokens(messages), self.count_tokens(text)),
                          finish_reason="stop")


class Recording(Canned):
    """Canned answers with the prompts recorded."""

    def stream(self, messages, **sampling):  # noqa: ANN001, ANN201
        self.sent.append(messages)
        return super().stream(messages, **sampling)

    def chat(self, messages, **sampling):  # noqa: ANN001, ANN201
        self.sent.append(messages)
        return super().chat(messages, **sampling)
