"""Writing from a library (issue 20.3): only a sentence the grounding check finds supported
gets a citation, each citation is an exact span that supports its sentence by itself,
markers the model wrote are removed, numbering runs across sections, and the plan follows
what the sources hold."""

from __future__ import annotations

import re

from tests.writing.conftest import Recording
from workers.qa.retrieval import InMemoryRetriever
from workers.qa.types import Passage, SourceDocument
from workers.writing import Plan, PlanSection, make_plan, write_document
from workers.writing.citing import (
    MARKER,
    Library,
    attests,
    citation_stats,
    cite,
    number_citations,
    source_topics,
    supports,
)
from workers.writing.writer import SOURCES_NOTE, key_sentence, restate_sources, section_brief

HARBOUR = ("The harbour of Altmark was rebuilt in 1998 by Kessler Marine Works. The work cost "
           "4.2 million euros. Fishing boats returned in the spring of 1999. The town council "
           "approved a second quay in 2004.")
TIDES = "Tides in the bay rise by three metres. Storms in winter flooded the old market twice."
DOCS = [SourceDocument(1, "Harbour report", HARBOUR), SourceDocument(2, "Tides", TIDES)]
TEXT = ("The harbour was rebuilt in 1998 by Kessler Marine Works [2]. It is a wonderful place "
        "full of joy and music. The rebuilding cost 4.2 million euros. Storms in winter flooded "
        "the old market. The moon is made of cheese and Peter Smith loved it in 1850.")


PROTESTS = ("During the 2020 protests in the United States, police officers used tear gas, "
            "batons and rubber bullets against demonstrators, and human rights groups documented "
            "hundreds of cases of police violence. Several cities later changed their rules.")
PROTEST_SPAN = PROTESTS[:PROTESTS.index(" Several")]
# Paraphrases on the wrong topic (prisons, not protests), built from the span's words: the
# first passes the old attaching level ("normal": 0.62 of its content words are there), the
# second even "strict" (0.75), but the embedder finds neither close to the span (≈0.3).
WRONG_TOPIC = ["Human rights groups documented cases of torture and rape of prisoners.",
               "Human rights groups documented hundreds of cases of torture in prisons."]
RESTATED = "In 2020 police in the United States used tear gas and rubber bullets against " \
    "demonstrators."


def test_only_supported_sentences_are_cited_each_by_a_span_that_supports_it():
    passages = [Passage(1, 0, 68, HARBOUR[:68], 1.0), Passage(2, 0, 38, TIDES[:38], 0.5)]
    cited = cite(TEXT, passages, DOCS, words=100)
    # The model's own "[2]" is gone; the three sentences the documents hold are cited, the
    # invented ones are not (kept as written, without a citation).
    assert cited.removed_markers == 1 and cited.sentences == 5 and cited.cited == 3
    assert "Kessler Marine Works [1]." in cited.text
    assert "4.2 million euros [2]." in cited.text and "old market [3]." in cited.text
    assert "full of joy and music." in cited.text and "loved it in 1850." in cited.text
    assert cited.unsupported == ["It is a wonderful place full of joy and music.",
                                 "The moon is made of cheese and Peter Smith loved it in 1850."]
    by_id = {d.id: d for d in DOCS}
    sentences = {1: "The harbour was rebuilt in 1998 by Kessler Marine Works.",
                 2: "The rebuilding cost 4.2 million euros.",
                 3: "Storms in winter flooded the old market."}
    for k, c in enumerate(cited.citations, start=1):
        assert by_id[c["document_id"]].text[c["start"]:c["end"]] == c["quote"]  # exact span
        assert supports(sentences[k], c["quote"]), (k, c)
    # The cost is cited at a span that holds it, not at the passage next to it.
    assert "4.2 million euros" in cited.citations[1]["quote"]
    stats = citation_stats([cited.text])
    assert stats["cited_sentences"] == 3 and stats["sentences"] == 5
    assert stats["cited_share"] == 0.6 and stats["per_100_words"] > 0


def test_support_outside_the_sections_evidence_is_not_searched():
    # The storms are in the tides document, but the section was written from the harbour
    # passage only: the check reads that passage and the text around it, not the library.
    cited = cite("Storms in winter flooded the old market.",
                 [Passage(1, 0, 68, HARBOUR[:68], 1.0)], DOCS, words=50)
    assert cited.citations == [] and cited.sentences == 1


def test_nothing_supported_means_no_citation_and_no_markers():
    text = "Dragons guard the northern pass. Their gold shines at night [1]."
    cited = cite(text, [Passage(2, 0, 38, TIDES[:38], 1.0)], DOCS, words=50)
    assert cited.citations == [] and cited.cited == 0
    assert cited.text == "Dragons guard the northern pass. Their gold shines at night."


def test_numbering_runs_across_sections_one_number_per_span():
    a = {"document_id": 1, "start": 0, "end": 5, "quote": "The h"}
    b = {"document_id": 2, "start": 0, "end": 5, "quote": "Tides"}
    texts, refs = number_citations([("One [1]. Two [2].", [a, b]),
                                    ("Three [1]. Four [2]. Odd [7].", [b, a]),
                                    ("No citations [1].", [])])
    assert texts == ["One [1]. Two [2].", "Three [2]. Four [1]. Odd [7].", "No citations [1]."]
    assert [(r.number, r.document_id) for r in refs] == [(1, 1), (2, 2)]


def test_topics_come_from_headings_then_key_passages():
    topics = source_topics({1: ["Rebuilding the harbour", "Costs", "costs", "#"], 2: []},
                           ["Tides in the bay rise by three metres. Storms came.", "Hm"])
    assert topics == ["Rebuilding the harbour", "Costs", "Tides in the bay rise by three metres"]


def test_the_plan_follows_the_sources_unless_the_instruction_lists_parts(llm):
    topics = ["Rebuilding the harbour", "Costs and funding", "Tides and storms", "The new quay"]
    plan = make_plan(llm, "Write a report on the harbour of Altmark.", 2000, topics=topics)
    assert plan.source == "sources" and "reference documents" in plan.note
    assert sum(s.words for s in plan.sections) == 2000
    points = " ".join(s.point for s in plan.sections)
    assert all(t in points for t in topics)
    listed = make_plan(llm, "Write a report on the harbour: its history, costs and future.",
                       900, topics=topics)
    assert listed.source == "structure"  # the instruction's own parts come first
    one = make_plan(llm, "Write a note on the harbour of Altmark.", 300, topics=topics)
    (section,) = one.sections
    assert one.source == "sources" and "drawing on: Rebuilding the harbour; Costs" in \
        section.point


def test_a_library_section_is_written_from_passages_and_cited(llm):
    retrieve = InMemoryRetriever(DOCS, passage_words=40)
    library = Library(DOCS, retrieve)
    section = ("The harbour of Altmark was rebuilt in 1998 by Kessler Marine Works [1]. "
               "The work cost 4.2 million euros. Many visitors enjoy the sunsets there every "
               "evening with their families and friends. ")
    canned = Recording(llm, [section])
    plan = Plan([PlanSection(1, "Rebuilding the harbour", 40),
                 PlanSection(2, "Costs of the harbour", 40)], "sources")
    saved = {}
    result = write_document("Write a report on the harbour.", plan, backend=canned,
                            done_sections={}, save_section=saved.__setitem__, library=library)
    first = saved[1]
    assert first.citations and first.citing["cited"] >= 2
    # The model's "[1]" named the passage whose span the check cited: confirmed.
    assert "[1]" in first.text and first.citing["model_markers"] == 1
    assert first.citing["confirmed_markers"] == 1 and first.citing["removed_markers"] == 0
    for c in first.citations:
        assert HARBOUR[c["start"]:c["end"]] == c["quote"]
    # The passages went into the prompt; later sections read the text without markers.
    second = next(m[-1]["content"] for m in canned.sent
                  if "Now write section 2" in m[-1]["content"])
    assert "Sources (numbered" in second and "Kessler Marine Works." in second
    assert "Works [1]" not in second
    assert "[1]" not in result.text and "Kessler Marine Works." in result.text


def _cited(text: str) -> list[tuple[str, int]]:
    """(sentence without its marker, marker number) for each marked sentence."""
    return [(MARKER.sub("", s).replace(" .", "."), int(k)) for s in
            re.split(r"(?<=[.!?])\s+", text) for k in MARKER.findall(s)]


def test_a_paraphrase_on_the_wrong_topic_is_not_cited_a_restatement_is():
    assert supports(WRONG_TOPIC[0], PROTEST_SPAN, "normal")
    assert not supports(WRONG_TOPIC[0], PROTEST_SPAN, "strict")
    assert supports(WRONG_TOPIC[1], PROTEST_SPAN, "strict")
    assert not any(attests(s, PROTEST_SPAN) for s in WRONG_TOPIC)
    assert attests(RESTATED, PROTEST_SPAN)
    docs = [*DOCS, SourceDocument(3, "Protests", PROTESTS)]
    cited = cite(" ".join([*WRONG_TOPIC, RESTATED]), [Passage(3, 0, 60, PROTESTS[:60], 1.0)],
                 docs, words=60)
    assert cited.sentences == 3 and cited.cited == 1 and cited.unsupported == WRONG_TOPIC
    assert cited.text.count("[1]") == 1 and "demonstrators [1]." in cited.text
    # The span cited is the one sentence that says it (not the passage, not its neighbour).
    assert [c["quote"] for c in cited.citations] == [PROTEST_SPAN]


def test_a_model_marker_is_kept_only_where_the_check_confirms_it():
    docs = [*DOCS, SourceDocument(3, "Protests", PROTESTS)]
    passages = [Passage(1, 0, 68, HARBOUR[:68], 1.0), Passage(3, 0, 60, PROTESTS[:60], 0.9)]
    text = (f"{WRONG_TOPIC[1][:-1]} [2]. {RESTATED[:-1]} [1]. "
            "The harbour of Altmark was rebuilt in 1998 by Kessler Marine Works [1].")
    cited = cite(text, passages, docs, words=60)
    # [2] on the paraphrase pointed at a span that does not support it: gone, uncited.
    assert cited.text.startswith(WRONG_TOPIC[1] + " ")
    # [1] on the protests named the harbour passage: removed; the sentence is cited at the
    # span that does support it. [1] on the harbour was right: confirmed.
    assert cited.model_markers == 3 and cited.confirmed_markers == 1
    assert cited.removed_markers == 2
    quotes = {s: cited.citations[k - 1]["quote"] for s, k in _cited(cited.text)}
    assert quotes == {RESTATED: PROTEST_SPAN,
                      "The harbour of Altmark was rebuilt in 1998 by Kessler Marine Works.":
                      HARBOUR[:HARBOUR.index(" The work")]}


def test_no_prompt_markup_reaches_the_text():
    passages = [Passage(1, 0, 68, HARBOUR[:68], 1.0), Passage(2, 0, 38, TIDES[:38], 0.5)]
    written = (f"{SOURCES_NOTE}\n[1] The harbour of Altmark was rebuilt in 1998 by Kessler "
               "Marine Works.\n[^2] Dragons guard the northern pass [2, 3]. Tides in the bay "
               "rise by three metres [2]. Reference material:\nThe work cost 4.2 million "
               "euros [1–2]. It was paid by the town [n]. Boats came back [Source 1].")
    cited = cite(written, passages, DOCS, words=60)
    assert "Sources" not in cited.text and "Reference material" not in cited.text
    assert "[^" not in cited.text and "," not in cited.text and "–" not in cited.text
    assert "[n]" not in cited.text and "[Source" not in cited.text
    assert cited.model_markers == 7
    markers = [int(k) for k in MARKER.findall(cited.text)]
    assert markers == [1, 2, 3] and len(cited.citations) == 3
    assert "Dragons guard the northern pass." in cited.text  # kept, uncited
    assert not cited.text.startswith(" ")
    for plain, k in _cited(cited.text):
        assert attests(plain, cited.citations[k - 1]["quote"]), (plain, k)


def test_the_continuation_rounds_see_the_sources_numbered():
    plan = Plan([PlanSection(1, "Rebuilding the harbour", 400)], "sources")
    brief = section_brief("Write a report on the harbour.", plan, plan.sections[0],
                          sources=[HARBOUR, TIDES])
    assert SOURCES_NOTE in brief and "[1] The harbour of Altmark" in brief
    assert "[2] Tides in the bay" in brief
    assert SOURCES_NOTE not in section_brief("Write a report.", plan, plan.sections[0])


def test_a_library_section_opens_with_its_sources_key_sentences_restated(llm):
    # The sentence sharing the point's words, whole (a passage cut mid-sentence at its
    # start, a short line and a run-on without a full stop are no candidates).
    passage = ("cost overruns. Tides. The work cost 4.2 million euros and was paid by the town "
               "council. Fishing boats returned to the harbour in the spring of 1999.")
    assert key_sentence(passage, "Costs of the work") == \
        "The work cost 4.2 million euros and was paid by the town council."
    assert key_sentence("cut off in the middle of a sentence without", "work") is None
    # One request per passage; the first sentence of each answer kept, an echo of the
    # request dropped; what it wrote is then checked like any sentence.
    canned = Recording(llm, ["The town council paid 4.2 million euros for the work. More.",
                             "# Tides\n\n| a | b |\nTides rise by three metres in the bay."])
    opening, usage = restate_sources(canned, [passage, TIDES], "Costs of the work")
    assert opening == ("The town council paid 4.2 million euros for the work. "
                       "Tides rise by three metres in the bay.")  # no heading, no table row
    assert len(canned.sent) == 2 and usage.completion_tokens > 0
    canned = Recording(llm, ["Rewrite: the work cost 4.2 million euros."])
    assert restate_sources(canned, [passage], "Costs")[0] == ""  # an echo of the request
    assert "The work cost 4.2 million euros" in canned.sent[0][-1]["content"]
