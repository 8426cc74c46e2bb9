"""One shape for an answer's citations, wherever they are stored or returned (the chat
message, the API's qa result)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from apps.documents.models import Document
from workers.qa.types import Citation

QUOTE_CHARS = 500


def citation_dicts(citations: Iterable[Citation], documents: Mapping[int, Document]) -> list[dict]:
    """Numbered from 1 in the answer's order, each with its document's title and the page
    its span starts on; a citation of a document not in ``documents`` is left out (the
    engine cites only the documents it was given)."""
    out = []
    for c in citations:
        document = documents.get(c.document_id)
        if document is None:
            continue
        out.append({"n": len(out) + 1, "document_id": c.document_id, "start": c.start,
                    "end": c.end, "quote": c.quote[:QUOTE_CHARS], "title": document.title,
                    "page": document.page_of(c.start)})
    return out
