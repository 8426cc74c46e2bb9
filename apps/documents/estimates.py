"""What a question over a team's documents will cost, before it runs: the engine's preview
(``workers.qa.estimate``) on the documents' stored token counts, at the configured model's
measured rates. Chat shows it under the question; the API returns it as a dry run."""

from __future__ import annotations

from collections.abc import Iterable

from apps.documents.models import DocStatus
from apps.documents.sources import source_documents, without_text
from workers.llm import LLMError, get_backend
from workers.qa.budget import check_question
from workers.qa.estimate import Preview, preview


class EstimateRefused(ValueError):
    """Shown to the person as it is."""


def question_preview(team, document_ids: Iterable[int], question: str,
                     documents=None) -> Preview:
    """``documents``: those the asker may read (apps.collections.access); the team's."""
    ids = sorted(set(document_ids))
    if not ids:
        raise EstimateRefused("Pick at least one document.")
    library = team.documents.all() if documents is None else documents
    documents = list(without_text(library.filter(pk__in=ids)))
    if len(documents) < len(ids):
        raise EstimateRefused("No such document in this team: "
                              + ", ".join(map(str, sorted(set(ids) - {d.pk for d in documents}))))
    waiting = [d.title for d in documents if d.status != DocStatus.READY]
    if waiting:
        raise EstimateRefused("Not ready yet: " + ", ".join(waiting) + ".")
    try:
        question = check_question(question)
        return preview(question, source_documents(documents), get_backend())
    except (ValueError, LLMError) as err:  # too long for the window, or the model unreachable
        raise EstimateRefused(f"{str(err)[:1].upper()}{str(err)[1:]}.") from None
