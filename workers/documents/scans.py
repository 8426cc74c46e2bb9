"""Synthetic scans for the OCR tests and benchmark, generated in code (nothing downloaded).

``page_image`` draws text onto a white page as a scanner would give it (a greyscale image
at ``dpi``), ``scanned_pdf`` makes an image-only PDF of such pages (no text layer),
``joined_pdf`` puts PDFs together (a mixed PDF: text-layer pages and scans), ``stamped_pdf``
writes a line of text on each page (a Bates number on a scan) and ``with_image`` draws an
image on each page (a logo on a text page).
"""

from __future__ import annotations

import ctypes
import io

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image, ImageDraw, ImageFont

A4_INCHES = (8.27, 11.69)


def font(path: str | None, size_px: int) -> ImageFont.FreeTypeFont:
    """A TrueType font at ``size_px``; Pillow's own (Aileron) when ``path`` is None."""
    return ImageFont.truetype(path, size_px) if path else ImageFont.load_default(size_px)


def page_image(text: str, font_path: str | None = None, pt: float = 12, dpi: int = 150,
               margin_inches: float = 1.0) -> Image.Image:
    """An A4 page of ``text`` (paragraphs split on blank lines, wrapped to the margins)."""
    width, height = (round(side * dpi) for side in A4_INCHES)
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    face = font(font_path, round(pt * dpi / 72))
    margin = round(margin_inches * dpi)
    line_height = round(pt * 1.45 * dpi / 72)
    y = margin
    for paragraph in text.split("\n\n"):
        for line in _wrap(paragraph.split(), face, width - 2 * margin):
            if y + line_height > height - margin:
                return image
            draw.text((margin, y), line, font=face, fill=0)
            y += line_height
        y += line_height // 2
    return image


def _wrap(words: list[str], face: ImageFont.FreeTypeFont, width: int) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in words:
        candidate = f"{current} {word}".strip()
        if current and face.getlength(candidate) > width:
            lines.append(current)
            current = word
        else:
            current = candidate
    return [*lines, current] if current else lines


def scanned_pdf(pages: list[Image.Image | str], dpi: int = 150, **style) -> bytes:
    """An image-only PDF, one page per image (or per text, drawn with ``page_image``)."""
    images = [p if isinstance(p, Image.Image) else page_image(p, dpi=dpi, **style)
              for p in pages]
    out = io.BytesIO()
    images[0].save(out, "PDF", save_all=True, append_images=images[1:], resolution=dpi)
    return out.getvalue()


def joined_pdf(parts: list[bytes]) -> bytes:
    """The pages of each PDF in ``parts``, in order, as one PDF."""
    joined = pdfium.PdfDocument.new()
    for data in parts:
        joined.import_pages(pdfium.PdfDocument(data))
    out = io.BytesIO()
    joined.save(out)
    return out.getvalue()


def stamped_pdf(data: bytes, stamp: str, pt: float = 10, top: bool = False) -> bytes:
    """Each page of ``data`` with ``stamp`` written on it in Helvetica (a text layer), near
    the bottom right corner or, with ``top``, the top right one."""
    pdf = pdfium.PdfDocument(data)
    for index in range(len(pdf)):
        page = pdf[index]
        width, height = page.get_size()
        text = pdfium_c.FPDFPageObj_NewTextObj(pdf.raw, b"Helvetica", ctypes.c_float(pt))
        chars = ctypes.create_string_buffer((stamp + "\0").encode("utf-16-le"))
        pdfium_c.FPDFText_SetText(text, ctypes.cast(chars, pdfium_c.FPDF_WIDESTRING))
        pdfium_c.FPDFPageObj_Transform(text, 1, 0, 0, 1, width - 160, height - 40 if top else 30)
        pdfium_c.FPDFPage_InsertObject(page.raw, text)
        page.gen_content()
        page.close()
    return _saved(pdf)


def with_image(data: bytes, image: Image.Image, box: tuple[float, float, float, float]
               ) -> bytes:
    """Each page of ``data`` with ``image`` drawn in ``box`` (left, bottom, width, height in
    points)."""
    pdf = pdfium.PdfDocument(data)
    for index in range(len(pdf)):
        page = pdf[index]
        obj = pdfium.PdfImage.new(pdf)
        obj.set_bitmap(pdfium.PdfBitmap.from_pil(image.convert("RGB")))
        left, bottom, width, height = box
        obj.set_matrix(pdfium.PdfMatrix().scale(width, height).translate(left, bottom))
        page.insert_obj(obj)
        page.gen_content()
        page.close()
    return _saved(pdf)


def _saved(pdf: pdfium.PdfDocument) -> bytes:
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()
