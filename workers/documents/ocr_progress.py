"""What the upload page says while OCR reads a document, page by page (a leaf module: the
sandbox's parent builds the message from the child's two numbers, the OCR loop in-process),
and what an error says of the pages OCR ran out of time on."""

from __future__ import annotations


def step_message(done: int, total: int) -> str:
    return f"OCR: page {done + 1} of {total}" if done < total else f"OCR: {total} pages read"


def slow_message(pages: list[int], limits) -> str:
    """Which pages OCR could not read in time ("OCR of page 3 took longer than 60 s")."""
    listed = ", ".join(str(n) for n in pages)
    return (f"OCR of page{'s' if len(pages) > 1 else ''} {listed} took longer than "
            f"{limits.ocr_page_seconds:g} s{' each' if len(pages) > 1 else ''}")
