"""OCR: scanned PDF pages and image files are read page by page (in the sandbox, as ingest
runs it), mixed PDFs OCR only the pages without a text layer, a page OCR cannot read is
recorded, a page past its time limit is left unreadable while the others are read, a scan
stamped with a few characters (a Bates number) is OCR'd and keeps its stamp while a text page
with a logo is not OCR'd, and bad input (an image bomb, a scanned PDF over the OCR page limit,
a corrupt TIFF) fails with a clear error. The scans are drawn here with Pillow from known
text."""

from __future__ import annotations

import io
import os
import time

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tests.documents_engine.builders import png_declaring
from workers.documents import Limits, extract_document, sandbox
from workers.documents.errors import (
    CorruptDocument,
    ImageTooLarge,
    ParseTimeout,
    TooManyPages,
)
from workers.documents.extract.ocr import layout
from workers.documents.sandbox import extract_sandboxed, sniff_sandboxed
from workers.documents.scans import (
    font,
    joined_pdf,
    page_image,
    scanned_pdf,
    stamped_pdf,
    with_image,
)
from workers.documents.synth import make_text_pdf

PAGES = [
    "Harbour report\n\nThe northern quay was rebuilt by Kessler Marine in spring.",
    "Lighthouse ledger\n\nKeeper Amundsen counted ninety ships in the autumn storms.",
    "Granary accounts\n\nThe mill on the river ground barley and oats for the village.",
]
WORDS = [["harbour", "quay", "kessler"], ["lighthouse", "amundsen", "ships"],
         ["granary", "barley", "village"]]


def _contains(text: str, words: list[str]) -> bool:
    # The recogniser sometimes drops the space between two words ("themill"): look for
    # each word, not each token.
    found = text.lower()
    return all(w in found for w in words)


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_a_scanned_pdf_is_read_page_by_page_with_progress():
    steps = []
    doc = extract_sandboxed(scanned_pdf(PAGES, pt=14),
                            progress=lambda done, total, message: steps.append((done, total,
                                                                                message)))
    assert doc.kind == "pdf" and len(doc.page_map) == 3
    assert doc.ocr_pages == [1, 2, 3] and doc.unreadable_pages == []
    for number, words in enumerate(WORDS, start=1):
        assert _contains(doc.page_text(number), words), (number, doc.page_text(number))
    # One step per page before it is read, and the end: what the upload page shows.
    assert [(d, t) for d, t, _ in steps] == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert steps[0][2] == "OCR: page 1 of 3" and steps[-1][2] == "OCR: 3 pages read"


def test_a_mixed_pdf_ocrs_only_the_pages_without_a_text_layer():
    blots = Image.new("L", (1240, 1754), 255)
    draw = ImageDraw.Draw(blots)
    for x in range(4):
        draw.ellipse((150 + 250 * x, 400, 330 + 250 * x, 580), fill=0)  # ink, no letters
    data = joined_pdf([
        make_text_pdf(["Typed page one about the harbour budget."]),
        scanned_pdf([PAGES[1]], pt=14),
        make_text_pdf(["Typed page three about the granary."]),
        scanned_pdf([Image.new("L", (1240, 1754), 255), blots]),
    ])
    doc = extract_sandboxed(data)
    assert len(doc.page_map) == 5
    assert doc.ocr_pages == [2]
    assert doc.unreadable_pages == [5]  # the blank page 4 is neither read nor unreadable
    assert doc.page_text(1) == "Typed page one about the harbour budget."
    assert _contains(doc.page_text(2), WORDS[1])
    assert doc.page_text(3) == "Typed page three about the granary."
    assert doc.page_text(4) == doc.page_text(5) == ""
    assert doc.pages_for_span(doc.text.index("Typed page three"), len(doc.text)) == [3]


@pytest.mark.parametrize("fmt, kind", [("PNG", "png"), ("JPEG", "jpeg")])
def test_an_image_is_read(fmt, kind):
    out = io.BytesIO()
    page_image(PAGES[0], pt=14).save(out, fmt)
    assert sniff_sandboxed(out.getvalue()) == kind
    doc = extract_document(out.getvalue())
    assert doc.kind == kind and doc.ocr_pages == [1]
    assert _contains(doc.text, WORDS[0])


def test_a_multi_page_tiff_is_one_page_per_frame():
    frames = [page_image(text, pt=14) for text in PAGES[:2]]
    out = io.BytesIO()
    frames[0].save(out, "TIFF", save_all=True, append_images=frames[1:], compression="tiff_lzw")
    doc = extract_sandboxed(out.getvalue())
    assert doc.kind == "tiff" and doc.ocr_pages == [1, 2] and len(doc.page_map) == 2
    assert _contains(doc.page_text(1), WORDS[0]) and _contains(doc.page_text(2), WORDS[1])


@pytest.mark.parametrize("width, height", [(100_000, 100_000), (8_000, 8_000)])
def test_an_image_bomb_is_refused_before_it_is_decoded(width, height):
    # 10 gigapixels (Pillow's own check would fire too) and 64 megapixels (only ours does).
    with pytest.raises(ImageTooLarge) as err:
        extract_sandboxed(png_declaring(width, height))
    assert err.value.code == "image_too_large"
    assert "the limit is 60 megapixels" in err.value.message


def test_a_scanned_pdf_over_the_ocr_page_limit_is_refused_before_any_page_is_read():
    tiny = Image.new("L", (40, 56), 255)
    data = scanned_pdf([tiny] * 2_000, dpi=5)  # 2,000 image-only pages
    steps = []
    with pytest.raises(TooManyPages) as err:
        extract_sandboxed(data, progress=lambda *step: steps.append(step))
    assert err.value.message == ("the PDF has 2,000 pages to read by OCR; the limit is "
                                 "1,000 pages")
    assert steps == []  # refused before OCR started


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_corrupt_tiff_fails_clearly(damage):
    out = io.BytesIO()
    page_image(PAGES[0], pt=14).save(out, "TIFF", compression="tiff_lzw")
    good = out.getvalue()
    data = (b"II*\x00" + b"\x13garbage" * 200 if damage == "garbage"
            else good[: len(good) // 3])
    with pytest.raises(CorruptDocument) as err:
        extract_sandboxed(data)
    assert "image is damaged" in err.value.message


def figures_table() -> Image.Image:
    """A scanned table of figures: ~1,000 separate numbers, each a box the recogniser reads
    on its own, the slowest kind of page (~25 CPU s here, against ~1-2 s for a page of two
    short lines), so it runs out of a few seconds' allowance on a machine several times
    faster than this one too."""
    image = Image.new("L", (1240, 1754), 255)  # A4 at 150 dpi
    draw = ImageDraw.Draw(image)
    face = font(None, round(8 * 150 / 72))
    for row, y in enumerate(range(20, 1714, 30)):
        for col, x in enumerate(range(20, 1160, 50)):
            draw.text((x, y), str(100 + (row * 37 + col * 11) % 900), font=face, fill=0)
    return image


def test_a_page_past_its_time_limit_is_left_unreadable_and_the_others_are_read():
    short = [page_image(PAGES[0], pt=14), page_image(PAGES[2], pt=14)]
    data = scanned_pdf([short[0], figures_table(), short[1]])
    steps = []
    doc = extract_sandboxed(data, Limits(ocr_page_seconds=5),
                            progress=lambda done, total, _: steps.append((done, total)))
    assert len(doc.page_map) == 3  # the page map is kept: page 3 is still page 3
    assert doc.ocr_pages == [1, 3] and doc.unreadable_pages == doc.slow_pages == [2]
    assert _contains(doc.page_text(1), WORDS[0]) and _contains(doc.page_text(3), WORDS[2])
    assert doc.page_text(2) == ""
    assert steps == [(0, 3), (1, 3), (2, 3), (3, 3)]


@pytest.mark.parametrize("pages, slow_pages, message", [
    # Every page out of time: nothing to ingest.
    (2, 5, "no text could be read: OCR of pages 1, 2 took longer than 0.5 s each"),
    # One slow page more than a document may lose: its OCR time is spent, page 3 is not read.
    (3, 1, "OCR of pages 1, 2 took longer than 0.5 s each: a document may lose at most 1 "
           "page to the OCR time limit"),
])
def test_a_document_fails_when_every_page_or_too_many_run_out_of_time(pages, slow_pages,
                                                                        message):
    data = scanned_pdf([figures_table(), figures_table(), PAGES[2]][:pages])
    steps = []
    with pytest.raises(ParseTimeout) as err:
        extract_sandboxed(data, Limits(ocr_page_seconds=0.5, ocr_slow_pages=slow_pages),
                          progress=lambda done, total, _: steps.append(done))
    assert err.value.message == message
    assert steps[-1] == 1 if pages == 3 else steps == [0, 1, 2]


def test_the_parent_tells_the_child_to_leave_a_page_past_its_wall_clock_deadline(monkeypatch):
    # The parent's side of the wall-clock limit (the child's is SIGUSR1 → PageTimeout): at
    # the page's deadline it says so once, and gives up on a child that stays in the page.
    monkeypatch.setattr(sandbox, "_STARTUP_SECONDS", 0.0)
    limits = Limits(parse_seconds=0.1, ocr_page_seconds=0.1)  # 0.2 s a page
    told = []

    def leaves_the_page():
        told.append(time.monotonic())
        os.write(write, b"[1, 2]\n[2, 2]\n")
        os.close(write)

    read, write = os.pipe()
    os.write(write, b"[0, 2]\n")
    try:
        assert sandbox._follow_steps(read, limits, None, leaves_the_page)[0] == (2, 2)
    finally:
        os.close(read)
    assert len(told) == 1
    read, write = os.pipe()
    os.write(write, b"[0, 2]\n")
    try:
        with pytest.raises(ParseTimeout) as err:
            sandbox._follow_steps(read, limits, None, lambda: told.append(time.monotonic()))
    finally:
        os.close(read)
        os.close(write)
    assert err.value.message == "OCR of page 1 of 2 took longer than 0.1 s"
    assert len(told) == 2 and time.monotonic() - told[1] >= 0.2


def test_a_stamped_scan_is_ocrd_and_keeps_its_stamp():
    data = joined_pdf([
        stamped_pdf(scanned_pdf([PAGES[0]], pt=14), "BATES 000123"),
        stamped_pdf(scanned_pdf([PAGES[1]], pt=14), "CONFIDENTIAL DRAFT", top=True),
    ])
    doc = extract_sandboxed(data)
    assert doc.ocr_pages == [1, 2] and doc.unreadable_pages == []
    first, second = doc.page_text(1), doc.page_text(2)
    assert _contains(first, WORDS[0]) and _contains(second, WORDS[1])
    # The stamp as its text layer spells it, once (OCR reads it too: not twice).
    assert "BATES 000123" in first and first.count("000123") == 1, first
    assert "CONFIDENTIAL DRAFT" in second and second.count("DRAFT") == 1, second
    assert second.index("DRAFT") < second.lower().index("amundsen")


def test_a_text_page_with_a_logo_is_not_ocrd():
    logo = Image.new("L", (200, 100), 255)
    ImageDraw.Draw(logo).ellipse((10, 10, 190, 90), fill=0)
    memo = "Typed memo about the harbour budget."  # few characters, as a stamp has
    data = with_image(make_text_pdf([memo, PAGES[2]]), logo, (400, 720, 120, 60))
    steps = []
    doc = extract_sandboxed(data, progress=lambda *step: steps.append(step))
    assert doc.ocr_pages == [] and steps == []
    assert doc.page_text(1) == memo and _contains(doc.page_text(2), WORDS[2])


def test_layout_joins_boxes_into_lines_and_paragraphs():
    def box(x, y, w, h):
        return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], dtype=float)

    # Grown boxes (40 px high) of lines 22 px apart overlap; a paragraph gap is 40 px.
    boxes = [(box(150, 2, 50, 38), "right"), (box(10, 0, 100, 40), "left"),
             (box(10, 22, 100, 40), "second"), (box(10, 44, 100, 40), "third"),
             (box(10, 84, 100, 40), "new"), (box(10, 106, 80, 40), "last")]
    assert layout(boxes) == "left right\nsecond\nthird\n\nnew\nlast"
