"""OCR of page images: RapidOCR (PP-OCRv4 detection + recognition in ONNX runtime, the
models inside its wheel, so nothing is downloaded), loaded once per process on first use.

``read_pages`` is the one loop for scanned PDF pages and image files: it takes the page
numbers to read and a function that gives each page's image, reports a step per page (the
sandbox gives each step its own CPU allowance) and sorts pages into read, blank and
unreadable.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from workers.progress import Progress, no_progress

from ..errors import TooManyPages
from ..limits import Limits
from ..ocr_progress import step_message

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
    """Text per page number (read pages only), and the page numbers OCR could not read."""

    texts: dict[int, str] = field(default_factory=dict)
    unreadable: list[int] = field(default_factory=list)


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
    progress: Progress = no_progress,
) -> OcrResult:
    """OCR each page in ``numbers`` (1-based) from ``image_of(number)``; ``None`` means the
    page could not be rendered. Progress: ``(done, total)`` before each page and at the end."""
    out = OcrResult()
    total = len(numbers)
    for done, number in enumerate(numbers):
        progress(done, total, step_message(done, total))
        image = image_of(number)
        if image is None:
            out.unreadable.append(number)
            continue
        if is_blank(image):
            continue
        text = recognise(image)
        if text.strip():
            out.texts[number] = text
        else:
            out.unreadable.append(number)
    if total:
        progress(total, total, step_message(total, total))
    return out


def scaled(image: Image.Image, pixels: int) -> Image.Image:
    """``image``, shrunk to at most ``pixels`` (OCR gains nothing from more; memory does)."""
    w, h = image.size
    if w * h <= pixels:
        return image
    factor = (pixels / (w * h)) ** 0.5
    return image.resize((max(1, int(w * factor)), max(1, int(h * factor))))

