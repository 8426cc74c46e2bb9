"""Documents as the QA engine takes them (``SourceDocument``), for chat and the API alike.

A question must not cost a read of every document: the rows come without their text
(``without_text``), each ``SourceDocument`` carries the token count stored at ingest (what
``auto`` decides from) and a loader, so the text is read only by a strategy that reads it.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet

from apps.documents.models import Document
from workers.qa.types import SourceDocument


def without_text(documents: QuerySet) -> QuerySet:
    return documents.defer("text")


def source_documents(documents: Iterable[Document]) -> list[SourceDocument]:
    # A deferred field loads on first access; 0 tokens: not counted at ingest (the LLM was
    # unreachable), so the engine counts that one itself.
    return [SourceDocument(d.pk, d.title, tokens=d.tokens or None, load=lambda d=d: d.text)
            for d in documents]
