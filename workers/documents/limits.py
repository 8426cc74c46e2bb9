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
    # OCR (scanned PDF pages, images): its time scales with the pages, so each page it reads
    # gets its own CPU seconds on top of parse_seconds (a dense A4 page takes ~20 s on one
    # core), the engine (ONNX runtime, OpenCV, models: ~0.5 GB mapped) its own memory, and a
    # document may have at most max_ocr_pages pages to OCR: refused before any page is read.
    max_ocr_pages: int = 1_000
    ocr_page_seconds: float = 60.0
    # A page past ocr_page_seconds is left unreadable and the next is read; a document may
    # lose this many pages so, one more and its OCR time is spent (it is refused): each such
    # page costs a full allowance, so a file of pathological pages cannot hold a worker long.
    ocr_slow_pages: int = 5
    ocr_memory_mb: int = 1024
    # Pixels of one image (or image page, or a PDF page rendered for OCR), checked on the
    # declared size before anything is decoded; Pillow's decompression-bomb limit is this.
    max_image_pixels: int = 60_000_000


DEFAULT_LIMITS = Limits()
