from __future__ import annotations

from bisect import bisect_right

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from pgvector.django import HnswIndex, VectorField

EMBEDDING_DIM = 384  # all-MiniLM-L6-v2; another embedder needs a migration of this column


class DocStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    PROCESSING = "processing", "Processing"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


def upload_path(instance: Document, filename: str) -> str:
    # Under the team's folder, one folder per content hash: names never collide.
    return f"teams/{instance.team_id}/documents/{instance.sha256[:2]}/{instance.sha256}/{filename}"


class Document(models.Model):
    team = models.ForeignKey("teams.Team", on_delete=models.CASCADE, related_name="documents")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )
    title = models.CharField(max_length=300)
    # A title a person gave stays: ingesting again does not replace it with the file's.
    title_edited = models.BooleanField(default=False)
    original_name = models.CharField(max_length=255)
    file = models.FileField(upload_to=upload_path, max_length=500)
    sha256 = models.CharField(max_length=64)
    kind = models.CharField(max_length=20, blank=True)  # sniffed: pdf, docx, html, ...
    size_bytes = models.PositiveBigIntegerField(default=0)
    status = models.CharField(max_length=12, choices=DocStatus.choices, default=DocStatus.QUEUED)
    error = models.TextField(blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    text = models.TextField(blank=True)
    # Character offset where each page starts, in order: page i+1 starts at page_starts[i].
    page_starts = models.JSONField(default=list, blank=True)
    headings = models.JSONField(default=list, blank=True)  # [{"level", "text", "start"}]
    synthetic_pages = models.BooleanField(default=False)
    # Pages (1-based) whose text came from OCR, and pages neither a text layer nor OCR read
    # (slow_pages: those of them OCR ran out of time on).
    ocr_pages = models.JSONField(default=list, blank=True)
    unreadable_pages = models.JSONField(default=list, blank=True)
    slow_pages = models.JSONField(default=list, blank=True)
    # ISO 639-1 code detected at ingest ("" until detected, or when no language was found).
    language = models.CharField(max_length=16, blank=True, default="")
    pages = models.PositiveIntegerField(default=0)
    words = models.PositiveBigIntegerField(default=0)
    tokens = models.PositiveBigIntegerField(default=0)
    chunk_count = models.PositiveIntegerField(default=0)
    job = models.ForeignKey("jobs.Job", on_delete=models.SET_NULL, null=True, blank=True,
                            related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    ingested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["team", "sha256"], name="unique_document_per_team")
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def page_map(self) -> list[tuple[int, int]]:
        return [(start, number) for number, start in enumerate(self.page_starts, start=1)]

    def page_of(self, offset: int) -> int:
        """The page (1-based) holding character ``offset``."""
        return max(1, bisect_right(self.page_starts, offset)) if self.page_starts else 1

    def page_bounds(self, number: int) -> tuple[int, int]:
        """Character span [start, end) of page `number` (1-based)."""
        starts = self.page_starts
        if not 1 <= number <= len(starts):
            raise ValueError(f"page {number} is outside 1..{len(starts)}")
        end = starts[number] if number < len(starts) else len(self.text)
        return starts[number - 1], end


class Chunk(models.Model):
    """A retrieval chunk: an exact span of its document's text, embedded and indexed."""

    # The team is repeated here so that every search filters by team inside the query.
    team = models.ForeignKey("teams.Team", on_delete=models.CASCADE, related_name="+")
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    start = models.PositiveIntegerField()
    end = models.PositiveIntegerField()
    text = models.TextField()
    tokens = models.PositiveIntegerField(default=0)
    pages = models.JSONField(default=list)
    heading = models.CharField(max_length=300, blank=True)
    embedding = VectorField(dimensions=EMBEDDING_DIM)
    # Full text in the document's language (apps/documents/fulltext.py): the configuration
    # the chunk was indexed with, and the vector, set at insert (CJK runs as bigrams, which
    # no expression in Postgres computes). Queries match each chunk in its own configuration.
    search_config = models.CharField(max_length=20, default="simple")
    search = SearchVectorField()

    class Meta:
        ordering = ["document_id", "index"]
        constraints = [
            models.UniqueConstraint(fields=["document", "index"], name="unique_chunk_index")
        ]
        indexes = [
            HnswIndex(name="chunk_embedding_hnsw", fields=["embedding"], m=16,
                      ef_construction=64, opclasses=["vector_cosine_ops"]),
            GinIndex(name="chunk_search_gin", fields=["search"]),
            models.Index(fields=["team", "document"]),
        ]

    def __str__(self) -> str:
        return f"{self.document_id}#{self.index}"


class Sentence(models.Model):
    """The fine-grained index: a sentence window (one sentence, short ones joined) of a
    chunk, with its vector. Search matches a question here and reads the chunk holding it
    (small-to-big): a paraphrased fact is lost in the average of a 250-token passage."""

    team = models.ForeignKey("teams.Team", on_delete=models.CASCADE, related_name="+")
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="sentences")
    chunk = models.ForeignKey(Chunk, on_delete=models.CASCADE, related_name="sentences")
    start = models.PositiveIntegerField()  # offsets in the document's text
    end = models.PositiveIntegerField()
    embedding = VectorField(dimensions=EMBEDDING_DIM)

    class Meta:
        ordering = ["document_id", "start"]
        indexes = [
            HnswIndex(name="sentence_embedding_hnsw", fields=["embedding"], m=16,
                      ef_construction=64, opclasses=["vector_cosine_ops"]),
            models.Index(fields=["team", "document"]),
        ]

    def __str__(self) -> str:
        return f"{self.document_id}@{self.start}-{self.end}"
