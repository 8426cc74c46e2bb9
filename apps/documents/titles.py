"""A document's title: the one a person gave it, else the file's own (metadata, first
heading: the engine's ``workers.documents.titles``), else the file name without extension."""

from __future__ import annotations

from pathlib import PurePath

from apps.documents.models import Document

MAX_TITLE_CHARS = Document._meta.get_field("title").max_length


class TitleRefused(ValueError):
    """Shown to the person as it is."""


def file_title(original_name: str) -> str:
    return PurePath(original_name).stem[:MAX_TITLE_CHARS] or "Untitled"


def title_after_ingest(document: Document, extracted_title: str) -> str:
    if document.title_edited:
        return document.title
    return (extracted_title or file_title(document.original_name))[:MAX_TITLE_CHARS]


def rename(document: Document, title: str) -> Document:
    """Give the document the title a person chose; it survives ingesting again."""
    title = " ".join(str(title).split())
    if not title:
        raise TitleRefused("A title cannot be empty.")
    if len(title) > MAX_TITLE_CHARS:
        raise TitleRefused(f"A title has at most {MAX_TITLE_CHARS} characters "
                           f"(this one has {len(title)}).")
    Document.objects.filter(pk=document.pk).update(title=title, title_edited=True)
    document.title, document.title_edited = title, True
    return document
