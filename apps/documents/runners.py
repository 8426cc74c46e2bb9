"""The ingest job kind."""

from __future__ import annotations

from apps.documents import services
from apps.jobs.kinds import register


@register("ingest_document", "Ingest a document", queue="ingest")
def run_ingest(job, progress) -> dict:
    document = job.team.documents.filter(pk=job.params["document_id"]).first()
    if document is None:
        return {"skipped": "The document was deleted before it was ingested."}
    return services.ingest(document, progress)


