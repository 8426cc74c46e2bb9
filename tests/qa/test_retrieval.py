"""Small-to-big retrieval (the sentence arm) and answer typing for every kind of question."""

from __future__ import annotations

import random

import pytest

from workers.documents.synth import filler_text, load_essays
from workers.qa import InMemoryRetriever, SourceDocument
from workers.qa.answer_types import (
    CODE,
    DATE,
    NUMBER,
    ORGANISATION,
    PERSON,
    PLACE,
    TITLE,
    WEEKDAY,
    question_kinds,
    sentence_kinds,
)
from workers.qa.haystack import DEFAULT_ESSAYS

# (question, fact worded without any of the question's content words, the kind asked)
FACTS = [
    ("Who approved the inspection of the warehouse?",
     "The audit of the depot was signed off by Margaret Oyelaran.", PERSON),
    ("What is the vessel at the port called?",
     "The boat moored at the harbour goes by the name Amber Heron.", TITLE),
    ("How many travellers fit aboard the boat?",
     "The ferry can carry 412 passengers at once.", NUMBER),
    ("Where is the group headquartered now?",
     "After the merger, the team moved its offices to Ljubljana.", PLACE),
]


@pytest.mark.parametrize(
    ("question", "kinds"),
    [
        ("Who approved the inspection?", {PERSON}),
        ("Which company built the satellite?", {ORGANISATION}),
        ("Where was the manuscript found?", {PLACE}),
        ("When was the treaty signed?", {DATE}),
        ("On which day are bins emptied?", {DATE, WEEKDAY}),  # the typed arm: weekdays
        ("What day was the treaty signed?", {DATE}),
        ("How many people helped?", {NUMBER}),
        ("What is the boat called?", {TITLE}),
        ("What is the pass key?", {CODE}),
        ("What number opens the safe's code lock?", {CODE}),  # a code, not a quantity
        ("Why did the company fail?", set()),
        ("", set()),
    ],
)
def test_question_kinds(question, kinds):
    assert question_kinds(question) == kinds


@pytest.mark.parametrize(
    ("sentence", "kind", "held"),
    [
        ("The audit was signed off by Margaret Oyelaran.", PERSON, True),
        ("The audit was signed off by the manager.", PERSON, False),
        ("The turbines were built by Kestrel Engineering Ltd under contract.", ORGANISATION,
         True),
        ("The manuscript turned up in an attic in Valparaiso.", PLACE, True),
        ("The pier reopened on 14 March 1871.", DATE, True),
        ("The market opens on Tuesdays.", WEEKDAY, True),
        ("The pier reopened on 14 March 1871.", WEEKDAY, False),
        ("The ships came in at dawn.", DATE, False),  # a time of day is no date
        ("You may go now.", DATE, False),  # "may" the verb
        ("The orchard has forty-two trees.", NUMBER, True),
        ("Whoever wants the safe to open must enter 481920 on its dial.", CODE, True),
        ("He was 20 years old in 2004.", CODE, False),  # a quantity and a year
    ],
)
def test_sentence_kinds(sentence, kind, held):
    assert (kind in sentence_kinds(sentence)) is held


def test_typing_is_linear_on_hostile_text():
    """A megabyte of capitalised words, digits and colons, and a 20,000-character
    question: read in one pass each (a backtracking pattern would not return)."""
    hostile = ("Ab Cd 12:30 4:" * 80_000)[:1_000_000]
    assert {PERSON, NUMBER, DATE} <= sentence_kinds(hostile)
    assert question_kinds("who " * 5_000) == {PERSON}


@pytest.fixture(scope="module")
def haystack() -> tuple[SourceDocument, dict[str, int]]:
    """~6k words of essays (generated prose without the shared data) with the facts."""
    text = filler_text(36_000, random.Random(7), load_essays(DEFAULT_ESSAYS))
    starts = {}
    for i, (_, fact, _) in enumerate(FACTS):
        at = text.find(". ", len(text) * (i + 1) // (len(FACTS) + 1)) + 2
        text = f"{text[:at]}{fact} {text[at:]}"
    for question, fact, _ in FACTS:
        starts[question] = text.index(fact)
    return SourceDocument("hay", "Essays", text), starts


def test_small_to_big_finds_a_paraphrased_fact_and_says_which_sentence(haystack):
    doc, starts = haystack
    retriever = InMemoryRetriever([doc], dense=True)
    assert len(retriever.passages) > 40
    for question, _, _ in FACTS:
        start = starts[question]
        passages = retriever(question, 5)
        holding = [p for p in passages if p.start <= start < p.end]
        assert holding, f"{question!r}: the fact's passage is not in the top 5"
        # Matched small, read big: the passage says which of its sentences matched.
        assert any(s <= start < e for s, e in holding[0].sentences), question
        for p in passages:
            assert all(p.start <= s < e <= p.end for s, e in p.sentences)
            assert doc.text[p.start:p.end] == p.text


def test_arms_switch_off_and_lexical_only_has_no_sentences(haystack):
    doc, _ = haystack
    dense = InMemoryRetriever([doc], dense=True, sentences=False)
    assert all(not p.sentences for p in dense(FACTS[0][0], 5))
    lexical = InMemoryRetriever([doc])
    assert all(not p.sentences for p in lexical(FACTS[0][0], 5))
    assert lexical("", 5) == [] or all(not p.sentences for p in lexical("", 5))
