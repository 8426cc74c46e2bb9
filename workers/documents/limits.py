"""Resource limits for extraction; the upload view passes its own, these are the defaults."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 100 * 1024 * 1024
    max_pages: int = 5_000
    # Zip containers (DOCX, EPUB): checked on the declared sizes before anything is inflated,
    # and again while inflating, because declared sizes can lie.
    max_uncompressed_bytes: int = 300 * 1024 * 1024
    max_member_ratio: float = 200.0
    max_members: int = 10_000
    # Chars per synthetic page for formats without pages (cut at a paragraph boundary).
    synthetic_page_chars: int = 3_000
    # Sniffing and extraction of an upload run in a child process (``sandbox``): CPU seconds
    # it may use, and memory (address space) beyond what the bare reader already holds.
    parse_seconds: float = 60.0
    parse_memory_mb: int = 1024


DEFAULT_LIMITS = Limits()
