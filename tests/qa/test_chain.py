"""The chain (``coa``) scores the next chunk's evidence while a worker writes, where the
backend runs requests at once: the same evidence, tokens and answer as one at a time."""

from __future__ import annotations

import threading
import time

from workers.qa import answer

from .conftest import Spy

OPTIONS = {"chunk_tokens": 1000, "cu_tokens": 48}


class Timed(Spy):
    """The real model, with each chat's and scoring's start and end time recorded, reporting
    ``slots`` requests at once."""

    def __init__(self, inner, slots: int) -> None:  # noqa: ANN001
        super().__init__(inner)
        self.slots = slots
        self.calls: list[tuple[str, float, float]] = []
        self._lock = threading.Lock()

    @property
    def concurrency(self) -> int:
        return self.slots

    def _timed(self, kind: str, call, *args, **kwargs):  # noqa: ANN001, ANN202
        began = time.perf_counter()
        try:
            return call(*args, **kwargs)
        finally:
            with self._lock:
                self.calls.append((kind, began, time.perf_counter()))

    def chat(self, messages, **sampling):  # noqa: ANN001, ANN201
        return self._timed("chat", super().chat, messages, **sampling)

    def continuation_logprobs(self, prompt, continuation, *, top_k=5):  # noqa: ANN001, ANN201
        return self._timed("score", super().continuation_logprobs, prompt, continuation,
                           top_k=top_k)


def _workers(result):  # noqa: ANN001, ANN202
    return [s for s in result.trace if s.name == "worker"]


def test_the_next_chunks_evidence_is_scored_while_a_worker_writes(llm, haystack, doc, seed_note):
    runs = {}
    for slots in (1, 2):
        backend = Timed(llm, slots)
        result = answer(haystack.question, [doc], "coa", backend=backend, answer_tokens=32,
                        options=OPTIONS)
        runs[slots] = (backend, result)
    (alone, one_at_a_time), (together, beside) = runs[1], runs[2]
    workers = _workers(beside)
    assert len(workers) >= 3, seed_note

    def overlapped(calls):  # noqa: ANN001, ANN202
        chats = [(b, e) for kind, b, e in calls if kind == "chat"]
        return [b for kind, b, _ in calls if kind == "score"
                and any(cb < b < ce for cb, ce in chats)]

    assert not overlapped(alone.calls)  # one request at a time: nothing beside a worker
    assert overlapped(together.calls), seed_note  # scoring began while a worker wrote
    assert not any("evidence_beside" in w.notes for w in _workers(one_at_a_time))
    assert all(w.notes.get("evidence_beside") for w in workers[1:]), seed_note
    # The same chunks' sentences scored, kept and counted, in the steps they belong to.
    for first, second in zip(_workers(one_at_a_time), workers, strict=True):
        assert first.notes["evidence_scores"] == second.notes["evidence_scores"], seed_note
        assert first.notes["evidence_kept"] == second.notes["evidence_kept"], seed_note
        assert (first.tokens_in, first.tokens_out) == (second.tokens_in, second.tokens_out)
    assert one_at_a_time.usage == beside.usage
    assert one_at_a_time.text == beside.text, seed_note
