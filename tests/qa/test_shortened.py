"""An answer that reaches its token room ends at its last finished sentence and says it was
shortened; one that ends on its own is left as it is."""

from __future__ import annotations

import pytest

from workers.qa import SourceDocument
from workers.qa.answering import whole_sentences
from workers.qa.engine import answer

REPORT = SourceDocument("harbour", "Harbour report", (
    "The harbour's northern quay was rebuilt between March and August by Kessler Marine "
    "Works. The work cost 4.2 million euros and was paid for by the port authority. Ship "
    "calls rose to 1,240 in the year, the most since 2009. A new pilot boat, the Mercator, "
    "entered service in October. Dredging of the eastern channel is planned for next spring, "
    "when the water is calm and the birds have left the sandbanks.") * 3)


@pytest.mark.parametrize(("text", "expected"), [
    ("The quay was rebuilt. Kessler did the", ("The quay was rebuilt.", True)),
    ("The quay was rebuilt. Kessler did the work.", ("The quay was rebuilt. Kessler did the "
                                                     "work.", False)),
    ("The quay was rebuilt by", ("The quay was rebuilt by…", True)),
    ("“It cost 4.2 million,” said the board. And", ("“It cost 4.2 million,” said the board.",
                                                    True)),
])
def test_whole_sentences(text, expected):
    assert whole_sentences(text) == expected


def test_an_answer_out_of_room_ends_at_a_sentence_and_says_so(llm):
    result = answer("Summarise the harbour report: what happened in the year?", [REPORT],
                    "full", backend=llm, answer_tokens=24, grounding="off")
    assert result.shortened, result.text
    assert result.text.rstrip().endswith((".", "!", "?", "…", "”", '"', ")")), result.text
    assert result.to_dict()["shortened"] is True


def test_a_short_answer_is_not_marked_shortened(llm):
    result = answer("Who rebuilt the quay?", [REPORT], "full", backend=llm, answer_tokens=200,
                    grounding="off")
    assert not result.shortened, result.text
