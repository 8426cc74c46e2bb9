"""The value that answers a question must stand in a sentence about the question's subject.

Found trying the app: over a harbour board's annual report, "What is the name of the company
that did the work on the quay?" was answered "… is Harbour Board." and grounded, citing the
sentence about the quay: "Harbour Board" is only in the report's title line, next to that
sentence. And "How much did the rebuilding cost?" was answered with copied sentences about
the rebuilding that state no sum, shown as grounded. The check runs with the real MiniLM
embedder, at both strictness levels where a wrong answer must be declined.
"""

from __future__ import annotations

import pytest

from workers.qa import SourceDocument
from workers.qa.citations import make_citation
from workers.qa.grounding import ABSTAIN_TEXT, check
from workers.qa.grounding_subject import evidence_units, is_heading

BODY = (
    "The harbour's northern quay was rebuilt between March and August. The work was carried "
    "out by Kessler Marine Works under a contract signed in February. The rebuilding cost "
    "£4.2 million, most of it met from the capital reserve. During the works, ferries berthed "
    "at the southern pier.\n\n"
    "A total of 312 vessels called at the harbour during the year, eleven more than in 2022. "
    "The new pilot station opened in Carrick Bay on 14 October. Cargo handled at the port "
    "rose to 1.8 million tonnes. The opening of the pilot station was delayed because winter "
    "storms damaged the access road. It reopened to traffic on 2 December. The "
    "board thanks the staff for their patience during the disruption."
)
# The title line as a text file has it: one newline, no full stop (the sentence splitter
# merges it into the first sentence); and as a paragraph of its own.
REPORT = SourceDocument("harbour", "harbour.txt", "Harbour Board Annual Report 2023\n" + BODY)
SPACED = SourceDocument("harbour2", "harbour.txt", "Harbour Board\n\n" + BODY)

QUAY = "The harbour's northern quay was rebuilt between March and August."
WORK = "The work was carried out by Kessler Marine Works under a contract signed in February."
COST = "The rebuilding cost £4.2 million, most of it met from the capital reserve."
BERTH = "During the works, ferries berthed at the southern pier."
VESSELS = "A total of 312 vessels called at the harbour during the year, eleven more than in 2022."
PILOT = "The new pilot station opened in Carrick Bay on 14 October."
CARGO = "Cargo handled at the port rose to 1.8 million tonnes."
DELAY = ("The opening of the pilot station was delayed because winter storms damaged the "
         "access road.")
COMPANY = "What is the name of the company that did the work on the quay?"
HOW_MUCH = "How much did the rebuilding cost?"


def _cite(doc: SourceDocument, *sentences: str):
    out = []
    for sentence in sentences:
        start = doc.text.index(sentence)
        out.append(make_citation(doc, start, start + len(sentence)))
    return out


@pytest.mark.parametrize("doc", [REPORT, SPACED], ids=["title merged", "title alone"])
@pytest.mark.parametrize("level", ["normal", "strict"])
def test_a_name_from_the_title_next_to_the_subject_is_no_answer(doc, level):
    v = check(COMPANY, "The company that did the work on the quay is Harbour Board.",
              _cite(doc, QUAY), [doc], level)
    assert v.abstained and not v.grounded and v.text == ABSTAIN_TEXT, v.notes
    assert "not about the question's subject" in v.notes["claims"][0]["reason"]
    # The closest passages shown instead are exact spans of the report.
    assert v.citations and all(doc.text[c.start : c.end] == c.quote for c in v.citations)


@pytest.mark.parametrize("text, cited", [
    (f"{QUAY} {BERTH}", [QUAY, BERTH]),  # true, on topic, no sum
    (f"{VESSELS} {QUAY}", [VESSELS, QUAY]),  # a number, but not the cost of the rebuilding
    ("The rebuilding was completed in August.", [QUAY]),
])
@pytest.mark.parametrize("level", ["normal", "strict"])
def test_copied_sentences_that_state_no_sum_do_not_answer_how_much(text, cited, level):
    v = check(HOW_MUCH, text, _cite(REPORT, *cited), [REPORT], level)
    assert v.abstained and not v.grounded, v.notes
    if level == "normal":  # strict may decline the on-topic sentences themselves already
        assert v.notes["reasons"][0] in (
            "no supported sentence states a number",
            "the question asks for a number; the answer holds none",
        )


@pytest.mark.parametrize("question, text, cited", [
    (HOW_MUCH, "It cost 312 pounds.", VESSELS),  # a number of the document, another subject
    (HOW_MUCH, "The rebuilding cost 1.8 million.", CARGO),
    ("When was the quay rebuilt?", "The quay was rebuilt on 14 October.", PILOT),
    ("When was the quay rebuilt?", "In 2022.", QUAY),  # a year of the next paragraph
    ("Where did the ferries berth during the works?", "In Carrick Bay.", BERTH),
    ("How many vessels called at the harbour?", "1.8 million vessels.", VESSELS),
    ("Which company rebuilt the quay?", "Carrick Bay.", QUAY),
])
@pytest.mark.parametrize("level", ["normal", "strict"])
def test_a_value_of_the_asked_kind_from_another_sentence_is_no_answer(
    question, text, cited, level
):
    """Every kind: the value is in the documents, of the right kind, cited or near the
    citation, but its sentence says nothing of the question's subject."""
    v = check(question, text, _cite(REPORT, cited), [REPORT], level)
    assert v.abstained and not v.grounded, v.notes


@pytest.mark.parametrize("question, text, cited", [
    (COMPANY, "Kessler Marine Works.", [QUAY]),  # cited: the sentence before the name
    (COMPANY, "The company that did the work on the quay is Kessler Marine Works.", [WORK]),
    ("Which firm did the quay work?", "Kessler Marine Works did.", []),
    (HOW_MUCH, "The rebuilding cost £4.2 million.", [COST]),
    (HOW_MUCH, "It cost 4.2 million pounds, mostly from the capital reserve.", []),
    ("When was the quay rebuilt?", "Between March and August.", [QUAY]),
    ("When did the new pilot station open?", "On 14 October.", [VESSELS]),
    ("Where did the new pilot station open?", "In Carrick Bay.", [PILOT]),
    ("How many vessels called at the harbour?", "312 vessels called at the harbour.", []),
    ("How much cargo did the port handle?", "1.8 million tonnes.", [CARGO]),
    ("Why was the opening of the pilot station delayed?",
     "Because winter storms damaged the access road.", [DELAY]),
])
def test_a_supported_answer_of_every_kind_is_kept(question, text, cited):
    v = check(question, text, _cite(REPORT, *cited), [REPORT])
    assert v.grounded and not v.abstained and v.text == text, v.notes


def test_a_month_that_is_also_a_common_word_is_a_date():
    """"May" is no key token (it is the modal verb as often), but it is the date asked."""
    memo = SourceDocument("memo", "Memo", "The harbour office moves to the third floor in "
                          "May. Bring your badge on the first day.")
    text = "The harbour office moves to the third floor in May."
    v = check("When does the harbour office move?", text, _cite(memo, text), [memo])
    assert v.grounded and not v.abstained, v.notes


def test_a_summary_is_still_checked_sentence_by_sentence():
    v = check("Summarise the report.",
              "The northern quay was rebuilt by Kessler Marine Works. It cost £4.2 million. "
              "312 vessels called at the harbour.", _cite(REPORT, QUAY), [REPORT])
    assert v.grounded and not v.abstained, v.notes


def test_a_sentence_that_refers_back_takes_its_subject_from_the_one_before():
    """"It reopened to traffic on 2 December." continues the sentence about the access road:
    the date answers a question about the road though its own sentence does not name it."""
    v = check("When could vehicles use the access road again?", "On 2 December.", [], [REPORT])
    assert v.grounded and not v.abstained, v.notes
    assert v.citations[0].quote == "It reopened to traffic on 2 December."


def test_subject_words_that_stand_beside_no_value_of_the_asked_kind_require_nothing():
    """The question's words are in the documents, but no sentence holding them states a
    code: they do not say where the code is, and an answer worded unlike the question (as
    the paraphrased pass keys of the haystacks are) is judged as before. Beside a code,
    they do: a code from another sentence is declined."""
    doc = SourceDocument("stores", "Stores", "The storeroom is behind the pilot station. "
                         "Staff keep spare rope and fenders there. To get into the supply "
                         "room, type 40917 on the panel.")
    question = "What is the access code for the storeroom?"
    kept = check(question, "40917.", [], [doc])
    assert kept.grounded and not kept.abstained, kept.notes
    located = SourceDocument("stores2", "Stores", doc.text + " The storeroom code is 55120.")
    assert check(question, "55120.", [], [located]).grounded
    wrong = check(question, "40917.", [], [located])
    assert wrong.abstained, wrong.notes


def test_a_title_line_is_cut_off_the_sentence_it_was_merged_into():
    units = [REPORT.text[s:e] for s, e in evidence_units(REPORT.text, 0, len(QUAY) + 40)]
    assert units[:2] == ["Harbour Board Annual Report 2023", QUAY]
    assert is_heading("Harbour Board Annual Report 2023")
    # Prose wrapped at a line end is not a heading: it stays one sentence.
    wrapped = "The work was carried out by\nKessler Marine Works in the spring."
    assert [wrapped[s:e] for s, e in evidence_units(wrapped, 0, len(wrapped))] == [wrapped]
