"""An answer never says a sentence twice or loops on a phrase: a small model does both
(seen in summaries of LooGLE papers, bench.summary_bench), and neither reaches the reader."""

from __future__ import annotations

import pytest

from tests.qa.test_grounding import REPORT, Scripted
from workers.qa.answering import without_repeats
from workers.qa.engine import answer

LOOP = ("This paper is about a supercuspidal representation of a tamely ramified torus of a "
        "tamely ramified torus of a tamely ramified torus of a tamely ram This paper is about")
TWICE = ("The method measures the width of the photon ring in the image. The method measures "
         "the width of the photon ring in the image.")


@pytest.mark.parametrize(("text", "expected", "cut"), [
    (LOOP, "This paper is about a supercuspidal representation of a tamely ramified torus…", 1),
    (TWICE, "The method measures the width of the photon ring in the image.", 1),
    # nearly the same sentence again (most of its 4-grams said already)
    ("The quay was rebuilt by Kessler Marine Works between March and August. Next spring the "
     "channel is dredged. The quay was rebuilt by Kessler Marine Works between March and June.",
     "The quay was rebuilt by Kessler Marine Works between March and August. Next spring the "
     "channel is dredged.", 1),
])
def test_repeats_and_loops_are_cut(text, expected, cut):
    assert without_repeats(text) == (expected, cut)


@pytest.mark.parametrize("text", [
    "The fee is 40 euros. It is paid in May. Very very good.",
    "It was approved by Ana, Ben and Carl. Ana signed it on 3 May.",
    "Step 1: open the hive. Step 2: check the brood. Step 3: close the hive.",
    "Yes. Yes. The quay was rebuilt.",
])
def test_text_that_does_not_repeat_itself_is_unchanged(text):
    assert without_repeats(text) == (text, 0)


def test_the_answer_path_drops_a_repeated_sentence_and_traces_it(llm):
    reply = ("The audit was signed off by Maria Keller. The audit was signed off by Maria "
             "Keller. The audit was signed off by Maria Keller.")
    result = answer("Who signed off the audit?", [REPORT], "full", backend=Scripted(llm, reply))
    assert result.text == "The audit was signed off by Maria Keller."
    assert result.grounded and not result.abstained
    step = next(s for s in result.trace if s.name == "answer")
    assert step.notes["repeats_cut"] == 2
