"""The ingest job kind."""

from __future__ import annotations

from apps.documents import services
from apps.jobs.kinds import Hooks, register
from workers.documents import DocumentError

INGEST_HOOKS = Hooks(on_start=services.on_ingest_start, on_success=services.on_ingest_success,
                     on_failure=services.on_ingest_failure, on_cancel=services.on_ingest_cancel,
                     on_requeue=services.on_ingest_requeue)


@register("ingest_document", "Ingest a document", queue="ingest", hooks=INGEST_HOOKS,
          plain_errors=(DocumentError,))
def run_ingest(job, progress) -> dict:
    document = job.team.documents.filter(pk=job.params["document_id"]).first()
    if document is None:
        return {"skipped": "The document was deleted before it was ingested."}
    return services.ingest(document, progress)


