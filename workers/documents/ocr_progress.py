"""What the upload page says while OCR reads a document, page by page (a leaf module: the
sandbox's parent builds the message from the child's two numbers, the OCR loop in-process)."""

from __future__ import annotations


def step_message(done: int, total: int) -> str:
    return f"OCR: page {done + 1} of {total}" if done < total else f"OCR: {total} pages read"
