"""``mapreduce``: note parsing and collapse grouping on tiny inputs, then the whole strategy
on the real embedded model over a small document (every chunk mapped concurrently)."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import pytest

from tests.llm.llm_fakes import ScriptedServer, chat_payload, sse_event
from tests.qa.conftest import Spy, assert_citations_exact
from workers.llm import BackendTimeout
from workers.llm.embedded import EmbeddedBackend
from workers.llm.openai_compat import OpenAICompatBackend
from workers.qa import SourceDocument, answer
from workers.qa.extract import extract_token
from workers.qa.mapreduce import (
    SERIAL_CHUNK_TOKENS,
    Fact,
    Note,
    _collapse,
    concurrency,
    group_sizes,
    parse_note,
    ranked_facts,
)
from workers.qa.run import Run
from workers.qa.scoring import Span

FILLER = [
    "The harbour town grew slowly over three centuries of trade and fishing.",
    "Merchants brought salt, wool and timber along the coastal road every spring.",
    "In winter the boats stayed ashore and the nets were mended in long sheds.",
    "A market was held in the square on the first day of each month.",
    "The old chapel on the hill was rebuilt twice after fires in the town.",
    "Children learned to read in a small school beside the customs house.",
]
ODD = "The ferry timetable was printed in blue ink by the harbour master."  # in one chunk
FACT = "The lighthouse of Penmarch was painted red by its keeper, Alys Varden, in 1887."


def _document() -> SourceDocument:
    paragraphs = [" ".join(FILLER[(i + j) % len(FILLER)] for j in range(6)) for i in range(8)]
    paragraphs.insert(5, FACT + " " + " ".join(FILLER[:3]))
    paragraphs[1] = ODD + " " + paragraphs[1]
    return SourceDocument("town", "A harbour town", "\n\n".join(paragraphs))


def test_a_note_is_parsed_from_untrusted_text() -> None:
    text = 'The part says "Alys Varden painted it in 1887."\nAnswer: Alys Varden\nConfidence: 85'
    assert parse_note(text) == ("Alys Varden", 85, ["Alys Varden painted it in 1887."])
    assert parse_note("Answer: none\nConfidence: 5") == ("", 5, [])
    assert parse_note("- answer: 42\nconfidence 400") == ("42", 100, [])  # capped
    assert parse_note("rambling without any label") == ("", None, [])
    # A summary's note is its text when the model forgot the label.
    note = parse_note("The town  trades\nsalt.", summary=True)
    assert note == ("The town trades salt.", None, [])


def test_notes_are_grouped_in_order_to_fit_the_window() -> None:
    assert group_sizes([3, 3, 3], 6) == [[0, 1], [2]]
    assert group_sizes([3, 3, 3], 9) == [[0, 1, 2]]
    assert group_sizes([10, 2, 2], 5) == [[0], [1, 2]]  # too big for any group: alone
    assert group_sizes([], 5) == []


def test_notes_that_fit_or_no_notes_at_all_need_no_collapse() -> None:
    run = Run(EmbeddedBackend())  # counting tokens only: the model is not loaded
    notes = [Note("chunk 1", "Alys Varden", 80), Note("chunk 2", "", 0)]
    assert _collapse(run, "Who?", notes, 64, False, 32) == notes
    assert _collapse(run, "Who?", [], 64, False, 32) == []  # every chunk failed
    assert run.steps == [] and run.usage.total_tokens == 0


def test_the_concurrency_is_the_backend_s_one_setting() -> None:
    assert concurrency(EmbeddedBackend(batch_size=3)) == 3
    assert concurrency(object()) == 1  # type: ignore[arg-type]


def test_mapreduce_answers_a_fact_question_citing_the_fact(llm) -> None:
    doc = _document()
    llm._decoder().peak_batch = 0
    result = answer("Who painted the lighthouse of Penmarch red?", [doc], "mapreduce",
                    backend=llm, answer_tokens=32, options={"chunk_tokens": 200})
    steps = {s.name: s for s in result.trace}
    chunks = steps["chunk"].notes["chunks"]
    assert chunks >= 3
    assert len(steps["map"].notes["notes"]) == chunks and not steps["map"].notes["failed"]
    assert llm._decoder().peak_batch >= 2  # the map calls were decoded together
    assert_citations_exact(result, [doc])
    fact_start = doc.text.index(FACT)
    assert any(c.start <= fact_start + 10 and c.end >= fact_start + len(FACT) - 10
               for c in result.citations), result.citations
    assert "Varden" in result.text, result.text
    assert "<" not in result.text and "Confidence" not in result.text


class _Unreadable(Spy):
    """The real model, except that any request holding ``marker`` fails (a failure the
    model cannot be made to produce)."""

    def __init__(self, inner: Any, marker: str) -> None:
        super().__init__(inner)
        self.marker = marker
        self.refused = 0

    def _check(self, messages) -> None:  # noqa: ANN001
        if any(self.marker in m["content"] for m in messages):
            self.refused += 1
            raise ConnectionError("server went away")

    def chat(self, messages, **sampling):  # noqa: ANN001, ANN201
        self._check(messages)
        return super().chat(messages, **sampling)

    def stream(self, messages, **sampling):  # noqa: ANN001, ANN201
        self._check(messages)
        return super().stream(messages, **sampling)


def test_a_chunk_that_fails_twice_is_reported_and_named_in_the_answer(llm) -> None:
    doc = _document()
    backend = _Unreadable(llm, ODD)
    result = answer("Who painted the lighthouse of Penmarch red?", [doc], "mapreduce",
                    backend=backend, answer_tokens=16, options={"chunk_tokens": 200})
    failed = next(s for s in result.trace if s.name == "map").notes["failed"]
    assert len(failed) == 1 and backend.refused == 2  # retried once, then reported
    f = failed[0]
    assert ODD in doc.text[f["start"] : f["end"]] and "ConnectionError" in f["error"]
    assert result.text.endswith(
        f"(Could not be read, so not used: part {f['chunk']} (document town, characters "
        f"{f['start']}-{f['end']}).)")


def _notes_of(text: str, confidences: list[int]) -> tuple[SourceDocument, list[Note]]:
    """One note per sentence of ``text`` (its fact), with the given confidences."""
    doc = SourceDocument("essays", "Essays", text)
    notes, start = [], 0
    for i, sentence in enumerate(text.split("\n")):
        fact = Fact(Span(doc, start, start + len(sentence)), "engine")
        notes.append(Note(f"chunk {i + 1}", "", confidences[i], [fact]))
        start += len(sentence) + 1
    return doc, notes


def test_facts_are_ranked_for_the_question_not_only_by_the_notes_confidence() -> None:
    # As at 128k: the model gave every note confidence 0, so the notes stood in chunk order
    # and the key's sentence (6th) was behind five others with code-like tokens.
    text = "\n".join([
        "Painting changed in the 1950s when the New York school moved abroad.",
        "A startup founded in 2004 had 12 people and one office.",
        "The Lisp machines of the 1980s were built by two companies.",
        "In 1998 the search engines ranked pages by counting links.",
        "Model XK-200 printers were sold to schools in the 1970s.",
        "The pass key is 94634. Remember it. 94634 is the pass key.",
    ])
    _, notes = _notes_of(text, [0] * 6)
    question = "What is the pass key?"
    ranked = ranked_facts(question, notes)
    assert ranked[0].span.text.startswith("The pass key is 94634")
    got = extract_token(question, [f.span.text for f in ranked], "The pass key is 94634.")
    assert got is not None and got.value == "94634"
    # The old order (the notes' confidence, then chunk order) answered from the first five.
    old = [f.span.text for n in notes for f in n.facts]
    assert extract_token(question, old, "The pass key is 94634.").value != "94634"


def test_a_confident_note_s_fact_still_leads_where_the_words_do_not_decide() -> None:
    text = "\n".join(["The harbour was dredged in spring.", "The quay was rebuilt in stone."])
    _, notes = _notes_of(text, [10, 90])
    ranked = ranked_facts("Who paid for the works?", notes)
    assert [f.span.text for f in ranked][0] == "The quay was rebuilt in stone."


def test_notes_that_overflow_the_window_are_collapsed_in_a_recorded_tree(llm) -> None:
    # A small window: the chunks' notes (with their facts) no longer fit one reduce call.
    small = EmbeddedBackend(llm.models_dir, context_window=600)
    doc = _document()
    result = answer("Who painted the lighthouse of Penmarch red?", [doc], "mapreduce",
                    backend=small,
                    answer_tokens=48, options={"chunk_tokens": 80, "note_tokens": 64})
    assert result.text and "<" not in result.text
    mapped = next(s for s in result.trace if s.name == "map").notes["notes"]
    collapses = [s for s in result.trace if s.name == "collapse"]
    assert collapses, [s.name for s in result.trace]
    first = collapses[0].notes["tree"]
    assert len(first) >= 2  # several groups at the first level
    fed = [source["note"] for merged in first for source in merged["from"]]
    assert fed == [n["note"] for n in mapped]  # every chunk's note fed one collapse, in order
    assert all(0 <= source["confidence"] <= 100 for m in first for source in m["from"])
    reduced = next(s for s in result.trace if s.name == "reduce").notes["confidences"]
    assert set(reduced) == {m["note"] for m in collapses[-1].notes["tree"]}


def test_window_sized_chunks_fit_the_window_with_their_document_s_id_title_and_part(
        llm) -> None:
    # No chunk cap: each chunk is as large as the window allows. The block around it names
    # the document (a long title here) and the part: all of it must fit with the note.
    backend = Spy(EmbeddedBackend(llm.models_dir, context_window=700))
    text = _document().text
    doc = SourceDocument("harbour-town-chronicle-volume-two", "A harbour town: the complete "
                         "chronicle of its trade, fishing, fairs and fires, 1600 to 1900", text)
    result = answer("Who painted the lighthouse of Penmarch red?", [doc], "mapreduce",
                    backend=backend, answer_tokens=16, options={"note_tokens": 32})
    mapped = next(s for s in result.trace if s.name == "map")
    assert mapped.notes["failed"] == [] and mapped.inputs["chunks"] >= 2
    maps = [m for m in backend.sent if doc.title in m[-1]["content"]]
    assert len(maps) == mapped.inputs["chunks"]
    assert all(backend.count_tokens(m) + 32 <= 700 for m in maps)
    assert max(backend.count_tokens(m) for m in maps) > 700 - 32 - 160  # chunks are large


def _busy_server_reply(handler: Any, body: dict[str, Any]) -> None:
    """A busy server's pace: every answer takes ~1.6 s, written a piece at a time."""
    pieces = ["Answer:", " Alys", " Varden", "\nConfidence:", " 90"]
    if not body.get("stream"):
        time.sleep(1.6)
        handler.send_json(200, chat_payload("".join(pieces)))
        return
    handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                        b"Connection: close\r\n\r\n")
    for piece in pieces:
        time.sleep(0.32)
        handler.wfile.write(sse_event(piece))
        handler.wfile.flush()
    usage = {"choices": [], "usage": {"prompt_tokens": 50, "completion_tokens": 5}}
    handler.send_raw(f"data: {json.dumps(usage)}\n\ndata: [DONE]\n\n".encode())


def test_map_calls_to_a_busy_server_are_timed_by_its_silence_not_by_their_length(llm) -> None:
    # The client gives up after 1 s without a byte. A busy server (a long queue of
    # prefills ahead) takes longer than that to finish a note, but keeps writing it.
    server = ScriptedServer({"/v1/chat/completions": _busy_server_reply})
    backend = OpenAICompatBackend(server.url, model="fake-model", context_window=2048,
                                  timeout=1.0, max_attempts=1, tokenizer=str(llm.folder))
    try:
        with pytest.raises(BackendTimeout):  # asked for the whole note at once: lost
            backend.with_capabilities(streaming=False).chat("Who painted it?", max_tokens=16)
        backend.with_capabilities(streaming=True)
        result = answer("Who painted the lighthouse of Penmarch red?", [_document()],
                        "mapreduce", backend=backend, answer_tokens=16,
                        options={"chunk_tokens": 200})
    finally:
        backend.close()
        server.stop()
    steps = {s.name: s for s in result.trace}
    map_step = steps["map"]
    assert not map_step.notes["failed"]
    assert len(map_step.notes["notes"]) == steps["chunk"].notes["chunks"] >= 3
    assert all(n["answer"] == "Alys Varden" for n in map_step.notes["notes"])
    assert "Could not be read" not in result.text


class _BatchedServer(Spy):
    """The real model, presented as a server that runs a batch's prompts together."""

    @property
    def capabilities(self):  # noqa: ANN201
        return dataclasses.replace(self.inner.capabilities, concurrent_batch=True)


def test_the_map_reads_small_chunks_where_prompts_are_read_one_at_a_time(llm, doc) -> None:
    """A CPU reading one prompt at a time pays attention's square: ~2k-token chunks there; a
    batched server reads window-sized ones (fewer notes to merge)."""
    tokens = llm.count_tokens(doc.text)
    options = {"note_tokens": 24}
    serial = answer("What is the pass key?", [doc], "mapreduce", backend=llm,
                    answer_tokens=16, options=options)
    batched = answer("What is the pass key?", [doc], "mapreduce", backend=_BatchedServer(llm),
                     answer_tokens=16, options=options)
    serial_chunk = next(s for s in serial.trace if s.name == "chunk")
    batched_chunk = next(s for s in batched.trace if s.name == "chunk")
    assert serial_chunk.inputs["cap"] == SERIAL_CHUNK_TOKENS < tokens < llm.context_window
    fewest = -(-tokens // SERIAL_CHUNK_TOKENS)  # chunks end at sentences: one more at most
    assert fewest <= serial_chunk.notes["chunks"] <= fewest + 1
    assert batched_chunk.inputs["cap"] is None and batched_chunk.notes["chunks"] == 1
