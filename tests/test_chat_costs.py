"""What one chat answer costs the app: the documents go to the engine without their text
(read only if a strategy reads it) and with their ingest token counts; the answer row is
written at most every QA_PARTIAL_SAVE_SECONDS while streaming, and once at the end."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.chat import services
from apps.chat.models import Message, MessageStatus
from apps.documents.models import DocStatus, Document
from apps.documents.sources import source_documents, without_text
from apps.jobs import services as jobs
from workers.llm.base import Usage
from workers.qa.types import Answer

pytestmark = pytest.mark.django_db

TEXT = "The warehouse in Rotterdam shipped 4,210 pallets in March. " * 50


def _document(team, title: str, tokens: int) -> Document:
    return Document.objects.create(
        team=team, title=title, original_name=f"{title}.txt", sha256=title, file="teams/x.txt",
        kind="text", status=DocStatus.READY, text=TEXT, tokens=tokens, page_starts=[0], pages=1)


def test_source_documents_carry_the_ingest_count_and_read_the_text_on_first_use(team):
    _document(team, "Counted", tokens=600)
    _document(team, "Not counted", tokens=0)  # the LLM was down at ingest
    rows = list(without_text(team.documents.order_by("title")))
    with CaptureQueriesContext(connection) as queries:
        counted, uncounted = source_documents(rows)
    assert len(queries) == 0 and not counted.loaded
    assert (counted.tokens, uncounted.tokens) == (600, None)
    with CaptureQueriesContext(connection) as queries:
        assert counted.span(10, 40) == TEXT[10:40]  # the span alone
        assert counted.text == TEXT
        assert counted.span(10, 40) == TEXT[10:40]  # then from the text read
    assert len(queries) == 2


def test_a_span_read_in_the_database_is_the_python_slice(team):
    text = "Café ☕ — 東京 😀 naïve façade.\n" * 40
    document = _document(team, "Unicode", tokens=10)
    Document.objects.filter(pk=document.pk).update(text=text)
    (source,) = source_documents(without_text(team.documents.all()))
    for start, end in ((0, 5), (3, 17), (30, 300), (len(text) - 7, len(text) + 50)):
        assert source.span(start, end) == text[start:end]


def test_the_answer_job_passes_documents_unread_and_writes_the_row_sparingly(
        team, member, monkeypatch, settings):
    settings.QA_PARTIAL_SAVE_SECONDS = 5
    documents = [_document(team, f"Doc {i}", tokens=600) for i in range(3)]
    conversation = services.start_conversation(team, member, documents)
    reply = services.ask(conversation, member, "How many pallets?", "rag")
    now = [0.0]
    monkeypatch.setattr(services.time, "monotonic", lambda: now[0])
    seen = {}

    def engine(question, docs, strategy, **kwargs):  # noqa: ANN001, ANN202
        seen["loaded"] = [d.loaded for d in docs]
        seen["tokens"] = [d.tokens for d in docs]
        for n in range(30):  # a token a second for 30 s
            now[0] += 1
            kwargs["on_token"](f"t{n} ")
        return Answer("4,210 pallets.", [], [], Usage(), strategy)

    monkeypatch.setattr(services, "qa_answer", engine)
    with CaptureQueriesContext(connection) as queries:  # the job as a worker runs it
        assert jobs.run(reply.job.pk, reply.job.celery_task_id) == "succeeded"
    assert seen == {"loaded": [False] * 3, "tokens": [600] * 3}
    selects_of_text = [q for q in queries if '"text"' in q["sql"] and "documents_document" in q[
        "sql"] and q["sql"].lstrip().upper().startswith("SELECT")]
    assert selects_of_text == []
    row_writes = [q for q in queries if q["sql"].startswith('UPDATE "chat_message"')
                  and '"content"' in q["sql"]]
    assert len(row_writes) == 5 + 1  # a partial save every 5 s (6 s apart), then the final row
    reply.refresh_from_db()
    assert reply.status == MessageStatus.DONE and reply.content == "4,210 pallets."
    assert Message.objects.filter(pk=reply.pk, content__startswith="4,210").exists()
