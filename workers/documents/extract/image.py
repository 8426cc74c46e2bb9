"""Image files (PNG, JPEG, TIFF; a multi-page TIFF is one page per frame), read by OCR.

Every frame's declared size is checked against the pixel limit before it is decoded, and
Pillow's own decompression-bomb limit is the same number.
"""

from __future__ import annotations

import io
import struct
import warnings

from PIL import Image, UnidentifiedImageError

from workers.progress import Progress, no_progress

from ..document import ExtractedDocument, from_pages
from ..errors import CorruptDocument, ImageTooLarge, NoTextFound, TooManyPages
from ..limits import Limits
from . import ocr, register

_KINDS = {"PNG": "png", "JPEG": "jpeg", "TIFF": "tiff"}
# What Pillow raises on a damaged file (truncated data, bad tags, broken compression).
_DAMAGE = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError,
           struct.error, IndexError, KeyError, ZeroDivisionError)


@register("png", "jpeg", "tiff", reports_progress=True)
def extract_image(data: bytes, limits: Limits, progress: Progress = no_progress
                  ) -> ExtractedDocument:
    Image.MAX_IMAGE_PIXELS = limits.max_image_pixels
    with warnings.catch_warnings():
        # Past the limit Pillow warns (twice past it, raises): our own check says it first.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            # Only the three formats sniffing admits: no other Pillow decoder sees the bytes.
            image = Image.open(io.BytesIO(data), formats=list(_KINDS))  # reads the header
            frames = getattr(image, "n_frames", 1)
        except Image.DecompressionBombError as exc:
            raise ImageTooLarge(f"the image is over twice the size allowed: the limit is "
                                f"{limits.max_image_pixels / 1e6:.0f} megapixels") from exc
        except _DAMAGE as exc:
            raise CorruptDocument("the image is damaged and cannot be read") from exc
        kind = _KINDS[image.format]
        if frames > limits.max_pages:
            raise TooManyPages(f"the image has {frames} pages; the limit is {limits.max_pages}")
        ocr.check_ocr_pages(frames, limits, "the image")
        for index in range(frames):  # all sizes first: refuse before OCR reads any page
            _seek(image, index)
            ocr.check_pixels(*image.size, limits, f"page {index + 1} of the image"
                             if frames > 1 else "the image")
        damaged: list[int] = []
        read = ocr.read_pages(list(range(1, frames + 1)),
                              lambda n: _frame(image, n - 1, damaged), limits, progress)
    pages = [read.texts.get(n, "") for n in range(1, frames + 1)]
    if not any(p.strip() for p in pages):
        if timeout := read.nothing_read(limits):
            raise timeout
        if damaged:
            raise CorruptDocument("the image is damaged and cannot be read")
        raise NoTextFound("no text could be read: OCR found no text in the image")
    doc = from_pages(kind, pages)
    doc.ocr_pages, doc.unreadable_pages = sorted(read.texts), read.unreadable
    doc.slow_pages = read.slow
    return doc


def _seek(image: Image.Image, index: int) -> None:
    try:
        image.seek(index)
    except _DAMAGE as exc:
        raise CorruptDocument(f"the image is damaged: page {index + 1} cannot be read") from exc


def _frame(image: Image.Image, index: int, damaged: list[int]) -> Image.Image | None:
    """Frame ``index`` decoded, in greyscale and shrunk to what OCR needs; None (and noted
    in ``damaged``) when its data is broken: the other pages are still read."""
    try:
        image.seek(index)
        return ocr.scaled(image.convert("L"), ocr.OCR_MAX_PIXELS)
    except _DAMAGE:
        damaged.append(index + 1)
        return None
