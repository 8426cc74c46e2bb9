"""Costs of a question: ``auto`` takes the token counts stored at ingest instead of reading
and tokenising every document, and a document's text is read only where a strategy reads
it (the app passes a loader)."""

from __future__ import annotations

import pytest

from tests.qa.conftest import Spy
from workers.qa import SourceDocument, answer, choose
from workers.qa.types import Passage

QUESTION = "How many pallets did the warehouse in Rotterdam ship in March?"
MEMO = ("Quarterly report. The warehouse in Rotterdam shipped 4,210 pallets in March. "
        "Revenue grew by eleven percent.")
OTHERS = ("The choir rehearses on Thursdays in the old chapel. ",
          "Tomatoes need full sun and regular watering in summer. ")


class Counting(Spy):
    """The real backend, recording every text it was asked to count."""

    def __init__(self, inner) -> None:  # noqa: ANN001
        super().__init__(inner)
        self.counted: list = []

    def count_tokens(self, text_or_messages) -> int:  # noqa: ANN001
        self.counted.append(text_or_messages)
        return super().count_tokens(text_or_messages)


def _lazy(texts: dict[int, str], loads: list[int], tokens: dict[int, int] | None = None,
          spans: list[tuple[int, int, int]] | None = None):
    """Documents as the app gives them; ``loads`` records whole reads, ``spans`` span reads
    (when given, the documents have a span loader)."""

    def loader(i: int):  # noqa: ANN202
        return lambda: loads.append(i) or texts[i]

    def span_loader(i: int):  # noqa: ANN202
        return lambda s, e: spans.append((i, s, e)) or texts[i][s:e]

    return [SourceDocument(i, f"Doc {i}", tokens=(tokens or {}).get(i), load=loader(i),
                           load_span=span_loader(i) if spans is not None else None)
            for i in texts]


def test_a_document_is_given_its_text_or_a_loader_and_reads_once():
    loads: list[int] = []
    (doc,) = _lazy({1: MEMO}, loads)
    assert not doc.loaded and loads == []
    assert doc.text == MEMO and doc.text == MEMO and loads == [1]
    assert doc == SourceDocument(1, "Doc 1", MEMO)
    with pytest.raises(TypeError):
        SourceDocument(1, "Doc 1")


def test_auto_chooses_from_the_ingest_counts_without_reading_or_tokenising(llm, haystack):
    texts = {i: haystack.text for i in range(1, 4)}
    counted = choose(haystack.question, [SourceDocument(i, f"Doc {i}", t)
                                         for i, t in texts.items()], llm, has_retriever=True)
    backend, loads = Counting(llm), []
    tokens = {i: llm.count_tokens(t) for i, t in texts.items()}
    decided = choose(haystack.question, _lazy(texts, loads, tokens), backend, has_retriever=True)
    assert (decided.strategy, decided.reason) == (counted.strategy, counted.reason)
    assert loads == [] and decided.facts["counted_now"] == 0
    assert haystack.text not in backend.counted  # the budget counts the question, not text
    # A document without a stored count (a failed count at ingest) is counted, alone.
    tokens.pop(2)
    loads.clear()
    again = choose(haystack.question, _lazy(texts, loads, tokens), backend, has_retriever=True)
    assert again.facts["document_tokens"] == counted.facts["document_tokens"]
    assert loads == [2] and again.facts["counted_now"] == 1


def test_rag_reads_only_the_documents_its_passages_come_from(llm):
    texts = {1: MEMO, 2: OTHERS[0] * 20, 3: OTHERS[1] * 20}
    start = MEMO.index("The warehouse")
    end = MEMO.index("Revenue")

    def index(question: str, k: int) -> list[Passage]:  # the app's stored index
        return [Passage(1, start, end, MEMO[start:end], 1.0)]

    loads: list[int] = []
    tokens = {i: llm.count_tokens(t) for i, t in texts.items()}
    result = answer(QUESTION, _lazy(texts, loads, tokens), "rag", backend=llm, retrieve=index,
                    grounding="off")
    assert result.strategy == "rag" and "4,210" in result.text
    assert loads == [1]
    # With a span loader (the app's), only the passage and its sentences are read.
    spans: list[tuple[int, int, int]] = []
    loads.clear()
    again = answer(QUESTION, _lazy(texts, loads, tokens, spans), "rag", backend=llm,
                   retrieve=index, grounding="off")
    assert (again.text, again.citations) == (result.text, result.citations)
    assert loads == [] and spans and all(i == 1 and start <= s < e <= end
                                         for i, s, e in spans)


def test_full_takes_the_ingest_counts_and_tokenises_the_documents_only_in_the_prompt(llm):
    texts = {1: MEMO, 2: OTHERS[0] * 5}
    tokens = {i: llm.count_tokens(t) for i, t in texts.items()}
    backend, loads = Counting(llm), []
    result = answer(QUESTION, _lazy(texts, loads, tokens), "full", backend=backend,
                    grounding="off")
    assert result.strategy == "full" and loads == [1, 2]
    # No count of a document alone: its text is tokenised once, inside the prompt's check.
    assert not any(text in texts.values() for text in backend.counted)
    # Without stored counts the documents are counted, each once.
    backend.counted.clear()
    answer(QUESTION, _lazy(texts, []), "full", backend=backend, grounding="off")
    assert [text for text in backend.counted if text in texts.values()] == list(texts.values())
