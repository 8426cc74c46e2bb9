"""Document verbs: upload (validate, deduplicate, store, enqueue), ingest, delete, re-ingest."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.documents.fulltext import config_for, index_vector
from apps.documents.models import Chunk, DocStatus, Document, Sentence
from apps.documents.titles import file_title, title_after_ingest
from apps.jobs.services import create_job
from workers.documents import DocumentError, Limits, safe_filename
from workers.documents.pipeline import ingest_bytes
from workers.documents.sandbox import sniff_sandboxed
from workers.llm import LLMError, get_backend

log = logging.getLogger(__name__)


class UploadRefused(Exception):
    """The upload is refused before anything is stored; the message says why."""

    def __init__(self, message: str, code: str = "refused", status: int = 400):
        super().__init__(message)
        self.message, self.code, self.status = message, code, status


def limits() -> Limits:
    return Limits(max_bytes=settings.DOCUMENT_MAX_BYTES, max_pages=settings.DOCUMENT_MAX_PAGES,
                  parse_seconds=settings.DOCUMENT_PARSE_SECONDS,
                  parse_memory_mb=settings.DOCUMENT_PARSE_MEMORY_MB,
                  ocr_page_seconds=settings.DOCUMENT_OCR_PAGE_SECONDS)


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.0f} MB"


def check_size(size: int | None) -> None:
    if size is not None and size > settings.DOCUMENT_MAX_BYTES:
        raise UploadRefused(
            f"The file is {_mb(size)}; the limit is {_mb(settings.DOCUMENT_MAX_BYTES)}.",
            "too_large", 413,
        )


@dataclass
class UploadOutcome:
    document: Document
    created: bool


def upload(team, user, uploaded) -> UploadOutcome:
    """Validate an uploaded file (size, then type by content), store it under the team's
    folder and queue its ingestion. The same content twice in a team gives the existing row."""
    check_size(uploaded.size)
    data = uploaded.read()
    check_size(len(data))
    if not data:
        raise UploadRefused("The file is empty (0 bytes).", "empty")
    try:
        kind = sniff_sandboxed(data, limits())  # a child process: hostile bytes stay there
    except DocumentError as err:
        raise UploadRefused(err.message, err.code) from err
    sha = hashlib.sha256(data).hexdigest()
    existing = team.documents.filter(sha256=sha).first()
    if existing:
        return UploadOutcome(existing, False)
    name = safe_filename(uploaded.name or "document")
    title = file_title(name)  # until ingest reads the file's own title
    try:
        with transaction.atomic():
            document = Document(team=team, created_by=user, title=title, original_name=name,
                                sha256=sha, kind=kind, size_bytes=len(data))
            document.file.save(name, ContentFile(data), save=False)
            document.save()
            _queue_ingest(document, user)
    except IntegrityError:  # the same file uploaded twice at once
        return UploadOutcome(team.documents.get(sha256=sha), False)
    return UploadOutcome(document, True)


def _queue_ingest(document: Document, user) -> None:
    job = create_job(document.team, "ingest_document", {"document_id": document.pk}, user=user,
                     title=f"Ingest “{document.title}”"[:200])
    document.job = job
    document.status = DocStatus.QUEUED
    document.error = document.error_code = ""
    document.save(update_fields=["job", "status", "error", "error_code"])


def reingest(document: Document, user) -> Document:
    with transaction.atomic():
        _queue_ingest(document, user)
    return document


def delete(document: Document) -> None:
    """The row, its chunks and vectors (cascade) and the stored file go together."""
    storage, name = document.file.storage, document.file.name
    with transaction.atomic():
        document.delete()
        transaction.on_commit(lambda: storage.delete(name) if name else None)


def ingest(document: Document, progress) -> dict:
    """Extract, chunk, embed (the engine's ``ingest_bytes``) and store the rows of one
    document; replaces earlier chunks. The document's status follows its job (the hooks
    below): this only works, and raises (a DocumentError: the file cannot be read)."""
    progress(0, 100, "Reading the file")
    with document.file.open("rb") as handle:
        data = handle.read()

    def ingesting(done: int, total: int, message: str) -> None:  # the last 10% is ours
        progress(done * 90 // max(total, 1), 100, message)

    # Embedder, chunk size, LongEmbed: the engine config the app fills (apps/core/engine).
    result = ingest_bytes(data, limits=limits(), progress=ingesting)
    extracted, chunks, stats = result.document, result.chunks, result.document.stats
    tokens = count_model_tokens(extracted.text)
    config = config_for(result.language)  # full text in the document's language
    with transaction.atomic():
        Chunk.objects.filter(document=document).delete()  # sentences go with them (cascade)
        rows = Chunk.objects.bulk_create(
            [Chunk(team_id=document.team_id, document=document, index=c.index, start=c.start,
                   end=c.end, text=c.text, tokens=c.tokens, pages=c.pages,
                   heading=c.heading[:300], embedding=vector, search_config=config,
                   search=index_vector(c.text, config))
             for c, vector in zip(chunks, result.vectors, strict=True)],
            batch_size=500,
        )
        Sentence.objects.bulk_create(
            [Sentence(team_id=document.team_id, document=document, chunk=row, start=s, end=e,
                      embedding=v)
             for row, spans, vs in zip(rows, result.windows, result.window_vectors,
                                       strict=True)
             for (s, e), v in zip(spans, vs, strict=True)],
            batch_size=1000,
        )
        Document.objects.filter(pk=document.pk).update(
            text=extracted.text, kind=extracted.kind,
            title=title_after_ingest(document, extracted.title),
            page_starts=[start for start, _ in extracted.page_map],
            headings=[{"level": h.level, "text": h.text, "start": h.start}
                      for h in extracted.headings],
            synthetic_pages=extracted.synthetic_pages, language=result.language,
            pages=stats.pages, words=stats.words,
            ocr_pages=extracted.ocr_pages, unreadable_pages=extracted.unreadable_pages,
            slow_pages=extracted.slow_pages,
            tokens=tokens, chunk_count=len(chunks), ingested_at=timezone.now(),
        )
    progress(100, 100, "Ready")
    return {"document_id": document.pk, "pages": stats.pages, "words": stats.words,
            "tokens": tokens, "chunks": len(chunks)}


def count_model_tokens(text: str) -> int:
    """Tokens of the active LLM's tokenizer; 0 when the backend cannot be reached (the
    count is informative, and ingest must not fail because the model server is down)."""
    try:
        return get_backend().count_tokens(text)
    except LLMError as err:
        log.warning("could not count tokens with the LLM backend: %s", err)
        return 0


# -- The ingest job's hooks: the document follows its job (apps/jobs/kinds.py) ---------------


def _job_document(job):
    """The document while this job is its ingest (a re-ingest has a newer job)."""
    return Document.objects.filter(pk=job.params["document_id"], team_id=job.team_id, job_id=job.pk)


def on_ingest_start(job) -> None:
    _job_document(job).update(status=DocStatus.PROCESSING, error="", error_code="")


def on_ingest_success(job, result: dict) -> None:
    if "chunks" in result:  # not skipped (the document was deleted)
        _job_document(job).update(status=DocStatus.READY, error="", error_code="")


def on_ingest_failure(job, error: str) -> None:
    _job_document(job).update(status=DocStatus.FAILED, error=error,
                              error_code=job.error_code or "ingest_failed")


def on_ingest_cancel(job) -> None:
    """A document indexed before keeps that index (a re-ingest only replaces it at its
    end); one never indexed says it was cancelled."""
    document = _job_document(job)
    document.filter(ingested_at__isnull=False).update(status=DocStatus.READY)
    document.filter(ingested_at__isnull=True).update(
        status=DocStatus.FAILED, error="The ingestion was cancelled.", error_code="cancelled")


def on_ingest_requeue(job, reason: str) -> None:
    _job_document(job).update(status=DocStatus.QUEUED, error="", error_code="")
