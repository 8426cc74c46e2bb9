"""Typed errors for documents the engine refuses, each with a message a person can act on.

The Django side shows ``error.message`` to the user and stores ``error.code`` on the job row.
"""

from __future__ import annotations


class DocumentError(Exception):
    """Base class: ``code`` is stable for machines, ``message`` is meant for people."""

    code = "document_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class EmptyDocument(DocumentError):
    code = "empty"


class DocumentTooLarge(DocumentError):
    code = "too_large"


class TooManyPages(DocumentError):
    code = "too_many_pages"


class UnsupportedDocument(DocumentError):
    code = "unsupported"


class CorruptDocument(DocumentError):
    code = "corrupt"


class EncryptedPDF(DocumentError):
    code = "encrypted"


class NoTextLayer(DocumentError):
    code = "no_text_layer"


class ArchiveBomb(DocumentError):
    """A DOCX/EPUB whose members would expand far beyond what the upload justifies."""

    code = "archive_bomb"


class ImageTooLarge(DocumentError):
    """An image whose declared dimensions exceed the pixel limit (a decompression bomb)."""

    code = "image_too_large"


class NoTextFound(DocumentError):
    code = "no_text"


class ParseTimeout(DocumentError):
    """Reading the file used up the CPU-time (or wall-clock) budget of the child process."""

    code = "parse_timeout"


class ParseMemory(DocumentError):
    """Reading the file needed more memory than the child process may have."""

    code = "parse_memory"


class ParserCrashed(DocumentError):
    """The reader stopped without an answer (a library crash on a hostile file)."""

    code = "parser_crashed"
