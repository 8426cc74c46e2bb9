"""Documents as the QA engine takes them (``SourceDocument``), for chat and the API alike.

A question must not cost a read of every document: the rows come without their text
(``without_text``), each ``SourceDocument`` carries the token count stored at ingest (what
``auto`` decides from), a loader of the text and one of a span, so the whole text is read
only by a strategy that reads it, and rag reads the passages it uses.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet
from django.db.models.functions import Substr

from apps.documents.models import Document
from workers.qa.types import SourceDocument


def without_text(documents: QuerySet) -> QuerySet:
    return documents.defer("text")


def text_span(pk: int, start: int, end: int) -> str:
    """``text[start:end]`` of a document, read in the database (substr counts characters as
    Python indexes a string, from 1)."""
    return (Document.objects.filter(pk=pk)
            .annotate(part=Substr("text", start + 1, max(0, end - start)))
            .values_list("part", flat=True).get())


def source_documents(documents: Iterable[Document]) -> list[SourceDocument]:
    # A deferred field loads on first access; 0 tokens: not counted at ingest (the LLM was
    # unreachable), so the engine counts that one itself.
    return [SourceDocument(d.pk, d.title, tokens=d.tokens or None, load=lambda d=d: d.text,
                           load_span=lambda s, e, pk=d.pk: text_span(pk, s, e))
            for d in documents]
