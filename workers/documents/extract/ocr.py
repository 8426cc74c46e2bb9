"""OCR of page images: RapidOCR (PP-OCRv4 detection + recognition in ONNX runtime, the
models inside its wheel, so nothing is downloaded), loaded once per process on first use.

``read_pages`` is the one loop for scanned PDF pages and image files: it takes the page
numbers to read and a function that gives each page's image, reports a step per page (the
sandbox gives each step its own CPU allowance) and sorts pages into read, blank and
unreadable. A page that runs out of time is unreadable (``slow``), not the end of the job:
the sandbox ends it with ``PageTimeout`` through ``page_guard``.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from workers.progress import Progress, no_progress

from ..errors import ParseTimeout, TooManyPages
from ..limits import Limits
from ..ocr_progress import slow_message, step_message

# Pages are rendered at this resolution for OCR: text of 8 pt and up reads as well as at
# 150 dpi, in half the time (detection time grows with the pixels; docs/documents.md).
RENDER_DPI = 100
# OCR reads no page larger than this (A4 at 300 dpi is 8.7 MP); bigger images are shrunk.
OCR_MAX_PIXELS = 9_000_000
# Each detected text box is grown by this ratio before its line is recognised: PP-OCR's
# default (1.6) crops so tight that the recogniser drops spaces ("theharbour"); 2.0 kept
# every space in the benchmark (docs/documents.md, *OCR*).
UNCLIP_RATIO = 2.0
# A page whose darkest pixels cover less than this share of it is blank (a separator sheet).
_INK_SHARE = 0.0005
_INK_LEVEL = 160  # grey level (0-255) below which a pixel counts as ink


@dataclass
class OcrResult:
    """Text per page number (read pages only), the page numbers OCR could not read, and
    those of them it could not read in time (``slow``)."""

    texts: dict[int, str] = field(default_factory=dict)
    unreadable: list[int] = field(default_factory=list)
    slow: list[int] = field(default_factory=list)

    def nothing_read(self, limits: Limits) -> ParseTimeout | None:
        """The error for a document left without text because its pages ran out of time
        (None when none did: the reader says why itself)."""
        if not self.slow:
            return None
        return ParseTimeout(f"no text could be read: {slow_message(self.slow, limits)}")


class PageTimeout(BaseException):  # noqa: N818 (not an error: a page's time is up)
    """Raised inside a page while it is read, when its time is up (see ``page_guard``). A
    BaseException, as KeyboardInterrupt is: RapidOCR turns any Exception from the ONNX
    runtime into its own error, and this one must reach ``read_pages``."""


# What reading one page runs under: the sandbox's child sets a guard that turns the page's
# CPU and wall-clock limits into PageTimeout inside the page; elsewhere, nothing.
page_guard: Callable[[], AbstractContextManager] = contextlib.nullcontext


@functools.cache
def engine():
    """The OCR engine of this process (~1 s to load). Upright pages: the 180° classifier
    misread upright lines in our tests, so it is off."""
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR(use_cls=False, print_verbose=False)


def check_pixels(width: int, height: int, limits: Limits, what: str) -> None:
    from ..errors import ImageTooLarge

    if width * height > limits.max_image_pixels:
        raise ImageTooLarge(
            f"{what} is {width:,} × {height:,} pixels; the limit is "
            f"{limits.max_image_pixels / 1e6:.0f} megapixels"
        )


def check_ocr_pages(count: int, limits: Limits, what: str) -> None:
    if count > limits.max_ocr_pages:
        raise TooManyPages(
            f"{what} has {count:,} pages to read by OCR; the limit is "
            f"{limits.max_ocr_pages:,} pages"
        )


def is_blank(image: Image.Image) -> bool:
    grey = np.asarray(image.convert("L"))
    return bool((grey < _INK_LEVEL).mean() < _INK_SHARE) if grey.size else True


def recognise(image: Image.Image) -> str:
    """The text of one page image: lines top to bottom, a blank line where the gap between
    lines is wider than a line (a new paragraph)."""
    result, _ = engine()(np.asarray(image.convert("RGB")), use_cls=False,
                         unclip_ratio=UNCLIP_RATIO)
    boxes = [(np.asarray(box, dtype=float), str(text)) for box, text, _score in result or []]
    return layout(boxes)


def layout(boxes: Sequence[tuple[np.ndarray, str]]) -> str:
    """Join recognised boxes (4 corner points, text) into lines and paragraphs. Boxes are
    grown (``UNCLIP_RATIO``), so those of neighbouring lines overlap: boxes are one line when
    their vertical centres lie within a quarter of a box height, read left to right; a new
    paragraph starts where the distance between two lines is well over the page's usual."""
    items = sorted(
        ((b[:, 1].min(), b[:, 1].max(), b[:, 0].min(), t) for b, t in boxes if t.strip()),
        key=lambda it: (it[0] + it[1]) / 2,
    )
    lines: list[list[tuple[float, float, float, str]]] = []
    for item in items:
        if lines:
            last = lines[-1]
            centre = sum(i[0] + i[1] for i in last) / (2 * len(last))
            height = sum(i[1] - i[0] for i in last) / len(last)
            if abs((item[0] + item[1]) / 2 - centre) < height / 4:
                last.append(item)
                continue
        lines.append([item])
    centres = [sum(i[0] + i[1] for i in line) / (2 * len(line)) for line in lines]
    pitches = np.diff(centres)
    usual = float(np.median(pitches)) if len(pitches) >= 2 else float("inf")
    parts: list[str] = []
    for n, line in enumerate(lines):
        if n:
            parts.append("\n\n" if pitches[n - 1] > 1.3 * usual else "\n")
        parts.append(" ".join(i[3].strip() for i in sorted(line, key=lambda i: i[2])))
    return "".join(parts)


def read_pages(
    numbers: Sequence[int],
    image_of: Callable[[int], Image.Image | None],
    limits: Limits,
    progress: Progress = no_progress,
) -> OcrResult:
    """OCR each page in ``numbers`` (1-based) from ``image_of(number)``; ``None`` means the
    page could not be rendered. Progress: ``(done, total)`` before each page and at the end.
    A page out of time is unreadable and the next is read; past ``limits.ocr_slow_pages``
    such pages the document has spent its OCR time: ``ParseTimeout``."""
    out = OcrResult()
    total = len(numbers)
    for done, number in enumerate(numbers):
        progress(done, total, step_message(done, total))
        if not done:
            # The engine loads once the first step has allowed its memory, and is no page's
            # cost: page 1 gets its own time after it (the same step, reported again).
            engine()
            progress(done, total, step_message(done, total))
        try:
            with page_guard():
                text = _read_page(image_of(number))
        except PageTimeout:
            out.slow.append(number)
            out.unreadable.append(number)
            if len(out.slow) > limits.ocr_slow_pages:
                most = limits.ocr_slow_pages
                raise ParseTimeout(f"{slow_message(out.slow, limits)}: a document may lose at "
                                   f"most {most} page{'s' if most != 1 else ''} to the OCR "
                                   f"time limit") from None
            continue
        if text:
            out.texts[number] = text
        elif text is None:
            out.unreadable.append(number)
    if total:
        progress(total, total, step_message(total, total))
    return out


def _read_page(image: Image.Image | None) -> str | None:
    """A page's text; "" when it is blank, None when it has ink but no text or no image."""
    if image is None:
        return None
    if is_blank(image):
        return ""
    text = recognise(image)
    return text if text.strip() else None


def scaled(image: Image.Image, pixels: int) -> Image.Image:
    """``image``, shrunk to at most ``pixels`` (OCR gains nothing from more; memory does)."""
    w, h = image.size
    if w * h <= pixels:
        return image
    factor = (pixels / (w * h)) ** 0.5
    return image.resize((max(1, int(w * factor)), max(1, int(h * factor))))

