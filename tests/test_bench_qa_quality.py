"""The QA quality benchmark's generators and scoring (bench.qa_facts, bench.qa_quality)."""

from __future__ import annotations

import json
import random
import re
from types import SimpleNamespace

import pytest

from bench.qa_facts import (
    KINDS,
    REGISTERS,
    TEMPLATES,
    accepted,
    build_document,
    load_loogle,
    make_fact,
    plan_documents,
)
from bench.qa_quality import (
    IngestedDocument,
    abstained,
    containment,
    covers,
    evidence_covered,
    markup_found,
)
from bench.qa_quality_report import report, summary
from workers.qa.haystack import content_words

ESSAY = (
    "Startups grow when founders talk to users every week. Most ideas look bad at first. "
    "The way to learn is to build something small and watch what people do with it. "
    "Investors care about growth more than about polish."
)
SOURCES = {
    "essays": [ESSAY] * 40,
    "articles": [("Harbour history", "The harbour was dredged twice. Ships grew larger.\n\n"
                  "Trade moved to the new quay in the north.")] * 20,
}


@pytest.mark.parametrize("kind", KINDS)
def test_facts_are_worded_unlike_their_questions(kind):
    for fact, question in TEMPLATES[kind]:
        shared = content_words(fact.format(a="Zanchor", v="")) & content_words(
            question.format(a="Zanchor"))
        assert shared == {"zanchor"}, (fact, question, shared)


@pytest.mark.parametrize("kind", KINDS)
def test_a_fact_names_its_value_and_only_that_value_is_accepted(kind):
    fact = make_fact(kind, random.Random(3))
    assert fact.value in fact.sentence and fact.anchor in fact.sentence
    assert fact.anchor in fact.question and fact.value not in fact.question
    assert fact.is_correct(f"It was {fact.value}.")
    other = next(f for seed in range(50)
                 if (f := make_fact(kind, random.Random(seed))).value != fact.value
                 and not fact.is_correct(f.value))
    assert not fact.is_correct(f"It was {other.value}.")
    assert make_fact(kind, random.Random(3)) == fact  # seeded


def test_answers_are_matched_by_tokens_not_by_layout():
    date = (("14", "march", "2019"),)
    assert accepted("On March 14, 2019.", date) and accepted("the 14th of March 2019", date)
    assert not accepted("On 4 March 2019.", date) and not accepted("14 March 2021", date)
    assert accepted("They meet on Tuesdays.", (("tuesday",),))
    assert accepted("About 1,250 of them", (("1250",),))
    assert accepted("code kx-4821", (("kx", "4821"),))
    assert not accepted("", (("x",),)) and not accepted("anything", ((),))


def test_a_fact_avoids_anchors_and_values_already_in_the_text():
    taken = " ".join(make_fact("place", random.Random(s)).anchor for s in range(100))
    fact = make_fact("place", random.Random(0), avoid=taken + " Tromso Galway")
    assert fact.anchor.lower() not in taken.lower()
    assert fact.value not in ("Tromso", "Galway")


def test_common_values_need_not_be_absent_from_a_long_text():
    """Every weekday and number occurs somewhere in a long text: only the name must not."""
    text = " ".join(["Monday Tuesday Wednesday Thursday Friday Saturday Sunday"]
                    + [str(n) for n in range(1000)])
    for kind in ("weekday", "quantity"):
        assert make_fact(kind, random.Random(0), avoid=text).anchor.lower() not in text.lower()


@pytest.mark.parametrize("register", REGISTERS)
def test_a_document_holds_its_facts_and_not_the_unanswerable_ones(register):
    doc = build_document(register, 3000, ["person", "date", "code"], ["title", "quantity"],
                         random.Random(7), SOURCES)
    answerable = [q for q in doc.questions if q.answerable]
    missing = [q for q in doc.questions if not q.answerable]
    assert [q.kind for q in answerable] == ["person", "date", "code"]
    assert [q.kind for q in missing] == ["title", "quantity"]
    for q in answerable:
        assert doc.text[q.start:q.end] == q.fact.sentence
        assert doc.text.count(q.fact.anchor) == 1
    for q in missing:
        assert q.fact.anchor.lower() not in doc.text.lower()
        assert q.fact.sentence not in doc.text
    assert 2700 <= doc.tokens <= 3300  # ~4 characters a token without a tokenizer
    if register == "transcript":
        lines = doc.text.splitlines()
        assert all(re.match(r"\[\d\d:\d\d:\d\d\] [A-Z ]+: ", line) for line in lines)
        for q in answerable:  # the fact is a speaker's turn, with a real time stamp
            line = next(x for x in lines if q.fact.sentence in x)
            assert line.endswith(q.fact.sentence) and line[1:3].isdigit()
    if register == "report":
        assert doc.text.startswith("## Harbour history")


def test_the_plan_asks_every_kind_at_every_length_over_the_registers():
    docs = plan_documents([2000, 4000], REGISTERS, KINDS, 2, 3, 0, SOURCES)
    for length in (2000, 4000):
        qs = [q for d in docs if d.length == length for q in d.questions]
        kinds = [q.kind for q in qs if q.answerable]
        assert sorted(kinds) == sorted(KINDS * 2)
        assert sum(not q.answerable for q in qs) == 3
        assert {d.register for d in docs if d.length == length} == set(REGISTERS)
    again = plan_documents([2000, 4000], REGISTERS, KINDS, 2, 3, 0, SOURCES)
    assert [d.text for d in again] == [d.text for d in docs]
    assert len({q.id for d in docs for q in d.questions}) == sum(len(d.questions) for d in docs)


def test_a_citation_covers_evidence_when_it_holds_most_of_it_or_lies_inside_it():
    gold = (100, 160)
    assert covers((0, 400), gold)  # the passage holding the sentence
    assert covers((110, 150), gold)  # a quote inside it
    assert covers((130, 200), gold)  # half of it
    assert not covers((155, 400), gold)  # a brush at its edge
    assert not covers((0, 100), gold) and not covers((170, 200), gold)
    assert evidence_covered([(0, 50), (120, 140)], [(10, 40), (100, 160), (300, 320)]) == [
        True, True, False]
    assert evidence_covered([], [gold]) == [False]


def test_abstention_is_read_from_the_engine_field_else_from_the_words():
    assert abstained(SimpleNamespace(text="Paris.", abstained=True)) == (True, "field")
    assert abstained(SimpleNamespace(text="I cannot find it.", abstained=False)) == (
        False, "field")
    for text in ("The documents do not appear to answer this.", "I cannot find the answer.",
                 "The name is not mentioned in the text.", "There is no information about it."):
        assert abstained(SimpleNamespace(text=text)) == (True, "text"), text
    for text in ("Margaret Oyelaran approved it.", "The vessel is called The Salt Orchard."):
        assert abstained(SimpleNamespace(text=text)) == (False, "text"), text


def test_prompt_markup_in_an_answer_is_found():
    assert markup_found("It was approved by Margaret Oyelaran.") == []
    leaked = 'was approved by the <document id="2" title="Audit" part="33706-34001"> board'
    found = markup_found(leaked)
    assert "<document" in found and 'part="' in found and 'title="' in found
    assert markup_found("see < document> and </document>") == ["< document", "</document"]
    assert markup_found("text < /notes") == ["< /notes"]
    from workers.qa.prompts import SYSTEM_PROMPT

    assert markup_found("Sure. " + SYSTEM_PROMPT)  # the instructions themselves


def test_containment_scores_the_gold_answers_content_words():
    assert containment("Tear gas in Paris and Nantes.", "Paris, Bordeaux and Nantes.") == \
        pytest.approx(2 / 3)
    assert containment("About 20300 buildings", "20,300") == 1.0
    assert containment("anything", "the of") == 0.0


def test_loogle_questions_keep_evidence_and_name_the_chosen_option(tmp_path):
    pairs = [{"Q": "How many?\n1. seven\n2. six\n3. five", "A": "3", "S": ["a", "b"]},
             {"Q": "Where?", "A": "Paris.", "S": "It was Paris."}]
    rows = [{"title": "T", "input": "text", "qa_pairs": str(pairs), "output": None},
            {"title": "U", "input": "more", "qa_pairs": pairs, "output": None}]
    path = tmp_path / "longdep_qa.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    docs, qs = load_loogle(path)
    assert docs == [("T", "text"), ("U", "more")] and len(qs) == 4
    assert qs[0].alternatives == ("3", "five") and qs[0].evidence == ("a", "b")
    assert qs[1].alternatives == ("Paris.",) and qs[1].evidence == ("It was Paris.",)
    docs, qs = load_loogle(path, documents=1, questions=1)
    assert len(docs) == 1 and len(qs) == 1


def _row(**kw):
    base = {"suite": "haystack", "length": 8000, "strategy": "rag", "strategy_used": "rag",
            "kind": "person",
            "register": "essays", "answer": "x", "seconds": 2.0, "markup": []}
    return {**base, **kw}


def test_summary_counts_accuracy_evidence_and_both_abstentions(tmp_path):
    rows = [
        _row(answerable=True, correct=True, evidence=True, abstained=False),
        _row(answerable=True, correct=False, evidence=True, abstained=True, draft_correct=True),
        _row(answerable=True, correct=False, evidence=False, abstained=False,
             markup=["<document"]),
        _row(answerable=False, correct=True, abstained=True),
        _row(answerable=False, correct=False, abstained=False),
        _row(answerable=False, refused="too long"),
    ]
    rows[-1].pop("answer")  # refused: no answer, counted as failed and wrong
    s = summary(rows)
    assert (s["accuracy"], s["evidence"], s["false_abstain"]) == ("1/3", "2/3", "1/3")
    assert s["declined_right"] == "1/1"  # the check declined the one right draft
    assert (s["abstains"], s["markup"], s["failed"], s["seconds"]) == ("1/3", "1", "1", "2.0")
    results = {"command": "python -m bench qa_quality", "rows": rows, "documents": []}
    report(tmp_path, results)
    md = (tmp_path / "results.md").read_text()
    assert "| 8000 | rag | 1/3 | 2/3 | 1/3 | 1/3 | 1/1 | 1 | 1 | 2.0 | rag ×5 |" in md
    assert (tmp_path / "qa_quality.png").stat().st_size > 1000


def test_rescore_rejudges_saved_drafts_with_the_check_and_rescores_them():
    """--rescore: the saved draft and its own citations go through today's check again;
    the verdict and the scores follow it (no model call)."""
    from bench.qa_quality import rescore

    text = ("The audit of the Rosley depot was signed off by Carmen Mensah. "
            "Staff said it took a week.")
    base = {"suite": "haystack", "length": 8000, "strategy": "rag", "document": "d",
            "question": "Who approved the inspection of the Rosley warehouse?",
            "accept": [["mensah"]], "gold": [0, 62],
            "draft_citations": [{"document_id": "d", "start": 0, "end": 62,
                                 "quote": text[:62]}],
            "abstained": True, "answer": "stale"}
    rows = [{**base, "answerable": True, "draft": "Carmen Mensah."},
            {**base, "answerable": True, "draft": "John Smith."},
            {**base, "answerable": False, "draft": "Carmen Mensah.",
             "question": "Who approved the inspection of the Norcombe warehouse?"}]
    results = {"rows": rows}
    rescore(results, {"d": text}, "normal")
    right, invented, unanswerable = results["rows"]
    assert right["answer"] == "Carmen Mensah." and right["correct"] and right["evidence"]
    assert right["grounded"] and not right["abstained"] and right["draft_correct"]
    assert invented["abstained"] and not invented["correct"] and not invented["draft_correct"]
    assert unanswerable["abstained"] and unanswerable["correct"]


def test_the_ingest_index_finds_a_paraphrased_fact_as_exact_spans():
    doc = build_document("essays", 1500, ["person"], [], random.Random(1), SOURCES)
    q = doc.questions[0]
    ingested = IngestedDocument("d", "t", doc.text.encode())
    text = ingested.document.text
    passages = ingested.retrieve(q.fact.question, 3)
    assert passages and all(text[p.start:p.end] == p.text for p in passages)
    assert any(q.fact.sentence in p.text for p in passages)
    assert ingested.retrieve(q.fact.question, 0) == []
