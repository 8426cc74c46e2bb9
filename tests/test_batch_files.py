"""The batch page's input: pasted questions and CSV / JSONL files turned into the API's batch
request, every bad input refused with its line before anything is created; the exports
escape formula cells; retrying failed items reopens the batch; the batch estimate."""

from __future__ import annotations

import csv
import io
import json
import time

import pytest

from apps.api import batch_estimate, batch_files, batch_results, services
from apps.api.batch_files import BatchInputError, Request, Upload
from apps.api.models import Batch, BatchStatus, ItemStatus
from apps.documents.models import DocStatus, Document
from apps.jobs import services as jobs
from apps.jobs.models import Job, Status
from tests.api.conftest import ready_document
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db
FORMULA = "=cmd|' /C calc'!A0"


@pytest.fixture
def docs(team):
    return [ready_document(team, title="Harbour report"),
            ready_document(team, text="The ferry leaves at nine.", title="Ferry timetable")]


def spec_for(team, **kwargs):
    return batch_files.batch_spec(team, Request(**{"kind": "qa", **kwargs}))


def upload(text: str | bytes, name: str = "questions.csv") -> Upload:
    return Upload(name, text.encode() if isinstance(text, str) else text)


def refused(team, **kwargs) -> list[str]:
    with pytest.raises(BatchInputError) as caught:
        spec_for(team, **kwargs)
    assert not Batch.objects.exists() and not Job.objects.exists()  # nothing ran
    return caught.value.messages


# -- What is accepted --------------------------------------------------------------------------


def test_pasted_questions_are_asked_of_the_picked_documents_together_or_each(team, docs):
    ids = [d.pk for d in docs]
    together = spec_for(team, text="Who keeps the light?\n\n  When does the ferry leave?  \n",
                        document_ids=ids, strategy="rag")
    assert together["items"] == [
        {"question": "Who keeps the light?", "document_ids": ids, "strategy": "rag"},
        {"question": "When does the ferry leave?", "document_ids": ids, "strategy": "rag"}]
    each = spec_for(team, text="Who keeps the light?", document_ids=ids, each_document=True)
    assert [i["document_ids"] for i in each["items"]] == [[ids[0]], [ids[1]]]
    batch = services.submit_batch(team, each).batch  # the API's own checks pass it
    assert batch.total == 2 and batch.kind == "qa"


def test_a_csv_names_each_rows_document_by_id_or_title(team, docs):
    ids = [d.pk for d in docs]
    text = ("\ufeffQuestion;Document\n"
            f"Who keeps the light?;{docs[0].title.upper()}\n"
            "When does the ferry leave?;\n"  # no document: the picked ones
            f"\"Which pier; and why?\";{ids[1]}\n")
    found = spec_for(team, upload=upload(text.encode("utf-8")), document_ids=[ids[1]])
    assert [(i["question"], i["document_ids"]) for i in found["items"]] == [
        ("Who keeps the light?", [ids[0]]), ("When does the ferry leave?", [ids[1]]),
        ("Which pier; and why?", [ids[1]])]


def test_a_jsonl_file_of_questions(team, docs):
    lines = [json.dumps({"question": "Who keeps the light?", "document_id": docs[0].pk}),
             "", json.dumps({"question": "And the ferry?", "document": "Ferry timetable"})]
    found = spec_for(team, upload=upload("\n".join(lines), "q.jsonl"))
    assert [i["document_ids"] for i in found["items"]] == [[docs[0].pk], [docs[1].pk]]


def test_formulas_in_cells_are_kept_as_text(team, docs):
    found = spec_for(team, upload=upload(f'question\n"{FORMULA}"\n'), document_ids=[docs[0].pk])
    assert found["items"][0]["question"] == FORMULA


def test_write_and_compress_items_from_csv_with_typed_numbers(team, docs):
    write = batch_files.batch_spec(team, Request(kind="write", upload=upload(
        "instruction,target_words\nA short note on tides,120\nA 400-word essay on gulls,\n")))
    assert write["items"] == [{"instruction": "A short note on tides", "target_words": 120},
                              {"instruction": "A 400-word essay on gulls"}]
    compress = batch_files.batch_spec(team, Request(kind="compress", text=(
        "document,ratio\nHarbour report,2.5\n")))
    assert compress["items"] == [{"document_id": docs[0].pk, "ratio": 2.5}]
    assert services.submit_batch(team, compress).batch.total == 1


# -- Bad input: each a clear message before anything runs --------------------------------------


def test_a_file_that_is_not_utf8_names_the_line(team, docs):
    data = "question\nWho keeps the light?\nWhat did the café serve?\n".encode("latin-1")
    messages = refused(team, upload=upload(data), document_ids=[docs[0].pk])
    assert "not UTF-8" in messages[0] and "line 3" in messages[0] and "0xE9" in messages[0]
    utf16 = refused(team, upload=upload("question\nWho?\n".encode("utf-16")))
    assert "UTF-16" in utf16[0]


def test_a_missing_column_says_which_and_what_the_file_has(team, docs):
    messages = refused(team, upload=upload("query,doc\nWho keeps the light?,1\n"),
                       document_ids=[docs[0].pk])
    assert "no “question” column" in messages[0] and "query, doc" in messages[0]
    unknown = refused(team, upload=upload("question,notes\nWho?,x\n"), document_ids=[docs[0].pk])
    assert "Unknown column(s) notes" in unknown[0]


def test_a_hundred_thousand_rows_are_refused_fast(team, docs):
    data = ("question\n" + "".join(f"Question number {n}?\n" for n in range(100_000))).encode()
    started = time.perf_counter()
    messages = refused(team, upload=upload(data), document_ids=[docs[0].pk])
    seconds = time.perf_counter() - started
    assert "100,000 questions" in messages[0] and "at most 1,000" in messages[0]
    assert seconds < 2, f"{seconds:.2f} s"
    jsonl = "\n".join(json.dumps({"question": f"Q{n}?"}) for n in range(100_000))
    assert "100,000" in refused(team, upload=upload(jsonl, "q.jsonl"))[0]


def test_a_file_over_the_size_limit_is_refused(team, docs, settings):
    settings.API_JSON_MAX_BYTES = 100
    messages = refused(team, upload=upload("question\n" + "Who keeps the light?\n" * 10),
                       document_ids=[docs[0].pk])
    assert messages == ["The file is larger than 100 bytes (API_JSON_MAX_BYTES); split it into "
                        "smaller batches."]


def test_questions_times_documents_over_the_limit_is_counted_before_building(team, settings):
    settings.API_BATCH_MAX_ITEMS = 10
    docs = [ready_document(team, title=f"Doc {n}") for n in range(4)]
    messages = refused(team, text="\n".join(f"Q{n}?" for n in range(3)),
                       document_ids=[d.pk for d in docs], each_document=True)
    assert messages == ["The batch would have 12 items (3 questions × 4 documents); a batch "
                        "holds at most 10 (API_BATCH_MAX_ITEMS)."]


def test_an_unknown_document_id_or_title_is_named_with_its_line(team, docs):
    theirs = ready_document(TeamFactory(), title="Their secret")
    text = (f"question,document_id\nWho?,{docs[0].pk}\nWhat?,999999\nWhere?,{theirs.pk}\n"
            "When?,abc\n")
    messages = refused(team, upload=upload(text))
    assert messages == [
        "Line 3: unknown document id 999999; this team has no such document.",
        f"Line 4: unknown document id {theirs.pk}; this team has no such document.",
        "Line 5: document_id must be a whole number, not “abc”."]
    by_title = refused(team, upload=upload("question,document\nWho?,Their secret\n"))
    assert by_title == ["Line 2: no document titled “Their secret” in this team's library."]
    assert refused(team, text="Who?", document_ids=[theirs.pk]) == [
        f"Unknown document id {theirs.pk}; this team has no such document."]


def test_a_document_still_ingesting_or_no_document_at_all(team, docs):
    Document.objects.filter(pk=docs[1].pk).update(status=DocStatus.PROCESSING)
    waiting = refused(team, upload=upload(f"question,document_id\nWho?,{docs[1].pk}\n"))
    assert waiting == ["Line 2: document “Ferry timetable” is not ready (processing)."]
    assert "Pick at least one document" in refused(team, text="Who keeps the light?")[0]


def test_other_bad_rows_and_files(team, docs):
    pick = {"document_ids": [docs[0].pk]}
    assert refused(team, upload=upload("question\n"), **pick) == ["The input has no questions."]
    assert "not both" in refused(team, text="Who?", upload=upload("question\nWho?\n"), **pick)[0]
    bad_json = refused(team, upload=upload('{"question": "Who?"}\n{"question": ', "q.jsonl"),
                       **pick)
    assert bad_json[0].startswith("Line 2 is not valid JSON")
    assert "Line 2 has 3 cells" in refused(team, upload=upload("question\nWho?,x,y\n"),
                                           **pick)[0]
    punctuation = refused(team, upload=upload("question\nWho?\n???\n"), **pick)
    assert punctuation[0].startswith("Line 3: question:")
    assert "Line 2: ratio must be a number, not “half”" in batch_files_error(
        team, "compress", "text,ratio\nSome text,half\n")
    assert "Unknown column(s) colour" in batch_files_error(team, "write", "instruction,colour\n"
                                                                          "A poem,red\n")
    assert "no “instruction” column" in batch_files_error(team, "write", "title\nA poem\n")


def batch_files_error(team, kind: str, text: str) -> str:
    with pytest.raises(BatchInputError) as caught:
        batch_files.batch_spec(team, Request(kind=kind, text=text))
    return caught.value.messages[0]


# -- Exports and retry -------------------------------------------------------------------------


def finished_batch(team, docs):
    batch = services.submit_batch(team, spec_for(
        team, text=f"{FORMULA}\nWho keeps the light?", document_ids=[docs[0].pk])).batch
    first, second = batch.items.order_by("index")
    first.mark(ItemStatus.SUCCEEDED, result={
        "answer": "+1 more: =HYPERLINK(\"http://x\")", "strategy": "full",
        "citations": [{"n": 1, "document_id": docs[0].pk, "start": 0, "end": 10,
                       "quote": "The keeper", "title": "Harbour report", "page": 1}],
        "usage": {"prompt_tokens": 50, "completion_tokens": 7}})
    second.mark(ItemStatus.FAILED, error="@SUM(1)")
    return services.refresh_batch(batch.pk)


def test_formula_cells_are_escaped_in_csv_and_xlsx(team, docs):
    batch = finished_batch(team, docs)
    text = batch_results.results_csv(batch)
    assert text.startswith("\ufeffindex,status,")  # the BOM Excel needs for UTF-8
    rows = list(csv.DictReader(io.StringIO(text[1:])))
    assert rows[0]["input"] == "'" + FORMULA
    assert rows[0]["output"] == "'+1 more: =HYPERLINK(\"http://x\")"
    assert rows[0]["citations"] == "[1] Harbour report, p. 1: “The keeper”"
    assert (rows[0]["prompt_tokens"], rows[0]["completion_tokens"]) == ("50", "7")
    assert rows[1]["error"] == "'@SUM(1)" and rows[1]["status"] == "failed"

    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(batch_results.results_xlsx(batch))).active
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    assert cells[0] == list(batch_results.COLUMNS)
    assert cells[1][2] == "'" + FORMULA and cells[2][-1] == "'@SUM(1)"
    assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)  # no formula
    lines = [json.loads(line) for line in batch_results.results_jsonl(batch)]
    assert lines[0]["input"]["question"] == FORMULA  # JSON is data: kept as it is


def test_retrying_failed_items_reopens_the_batch(team, docs):
    batch = services.submit_batch(team, spec_for(team, text="Who keeps the light?",
                                                 document_ids=[docs[0].pk])).batch
    item = batch.items.get()
    Document.objects.filter(pk=docs[0].pk).delete()  # the item fails for real when it runs
    assert jobs.run(item.job_id, item.job.celery_task_id) == Status.FAILED
    batch.refresh_from_db()
    assert batch.status == BatchStatus.FAILED and batch.finished_at is not None
    assert services.retry_failed(batch) == 1
    batch.refresh_from_db()
    item.refresh_from_db()
    assert item.status == ItemStatus.QUEUED and item.error == ""
    assert item.job.status == Status.QUEUED
    assert (batch.status, batch.finished_at, batch.failed) == (BatchStatus.RUNNING, None, 0)
    assert services.retry_failed(batch) == 0  # nothing failed now


def test_the_batch_estimate_sums_distinct_pairs_and_says_when_it_sampled(team, docs,
                                                                         monkeypatch):
    items = spec_for(team, text="Who keeps the light?\nWho keeps the light?\nWhen?",
                     document_ids=[d.pk for d in docs], each_document=True)["items"]
    whole = batch_estimate.batch_estimate(team, items)
    assert (whole.items, whole.pairs, whole.sampled, whole.is_sample) == (6, 4, 4, False)
    assert whole.calls >= 6 and whole.prompt_tokens > 0 and not whole.refused
    assert sum(whole.auto_picks.values()) == 6
    monkeypatch.setattr(batch_estimate, "SAMPLE_PAIRS", 2)
    sampled = batch_estimate.batch_estimate(team, items)
    assert sampled.is_sample and sampled.sampled == 2 and sampled.pairs == 4
    assert sampled.prompt_tokens == pytest.approx(whole.prompt_tokens, rel=0.5)
    unmodelled = [dict(i, strategy="newer") for i in items[:1]]  # one the preview lacks
    none = batch_estimate.batch_estimate(team, unmodelled)
    assert none.prompt_tokens == 0 and none.refused == [
        "“Who keeps the light?”: no estimate with newer: the preview has no cost model "
        "for it yet."]
