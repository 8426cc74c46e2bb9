"""OCR: scanned PDF pages and image files are read page by page (in the sandbox, as ingest
runs it), mixed PDFs OCR only the pages without a text layer, a page OCR cannot read is
recorded, and bad input (an image bomb, a scanned PDF over the OCR page limit, a corrupt
TIFF) fails with a clear error. The scans are drawn here with Pillow from known text."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tests.documents_engine.builders import png_declaring
from workers.documents import Limits, extract_document
from workers.documents.errors import (
    CorruptDocument,
    ImageTooLarge,
    ParseTimeout,
    TooManyPages,
)
from workers.documents.extract.ocr import layout
from workers.documents.sandbox import extract_sandboxed, sniff_sandboxed
from workers.documents.scans import joined_pdf, page_image, scanned_pdf
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


def test_each_page_has_its_own_ocr_time_limit():
    dense = "\n\n".join(PAGES * 12)
    with pytest.raises(ParseTimeout) as err:
        extract_sandboxed(scanned_pdf([dense, dense]), Limits(ocr_page_seconds=0.5))
    assert err.value.message == "OCR of page 1 of 2 took longer than 0.5 s"


def test_layout_joins_boxes_into_lines_and_paragraphs():
    def box(x, y, w, h):
        return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], dtype=float)

    # Grown boxes (40 px high) of lines 22 px apart overlap; a paragraph gap is 40 px.
    boxes = [(box(150, 2, 50, 38), "right"), (box(10, 0, 100, 40), "left"),
             (box(10, 22, 100, 40), "second"), (box(10, 44, 100, 40), "third"),
             (box(10, 84, 100, 40), "new"), (box(10, 106, 80, 40), "last")]
    assert layout(boxes) == "left right\nsecond\nthird\n\nnew\nlast"
