"""Bad input: each case a typed error with a message a person can act on."""

from __future__ import annotations

import io
import time
import zipfile

import pypdf
import pytest

from workers.documents import Limits, extract_document, safe_filename
from workers.documents.chunking import chunk_text, whitespace_token_counter
from workers.documents.errors import (
    ArchiveBomb,
    CorruptDocument,
    DocumentError,
    DocumentTooLarge,
    EmptyDocument,
    EncryptedPDF,
    NoTextFound,
    TooManyPages,
    UnsupportedDocument,
)
from workers.documents.synth import make_text_pdf

from .builders import lie_about_size, make_docx, make_zip_bomb


def test_empty_file():
    with pytest.raises(EmptyDocument, match="empty"):
        extract_document(b"")


def test_over_size_limit():
    with pytest.raises(DocumentTooLarge, match="limit is"):
        extract_document(b"x" * 2048, Limits(max_bytes=1024))


def test_corrupt_pdf():
    good = make_text_pdf(["some text"])
    with pytest.raises(CorruptDocument, match="damaged"):
        extract_document(b"%PDF-1.7\n" + b"\x13garbage" * 50)
    with pytest.raises(DocumentError):
        extract_document(good[:60])


def test_encrypted_pdf():
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(make_text_pdf(["secret"]))))
    writer.encrypt("hunter2", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(EncryptedPDF) as err:
        extract_document(out.getvalue())
    assert err.value.message == "encrypted PDF: remove the password and upload again"
    assert err.value.code == "encrypted"


def test_image_only_pdf_without_letters():
    # Scanned pages are read by OCR (tests/documents_engine/test_ocr.py); a checkerboard has
    # no letters to read.
    with pytest.raises(NoTextFound) as err:
        extract_document(make_text_pdf(["", ""], image_only=True))
    assert err.value.message == ("no text could be read: the PDF has no text layer, and OCR "
                                 "found no text on its 2 pages")


def test_page_limit_pdf_and_text():
    with pytest.raises(TooManyPages, match="limit is 3"):
        extract_document(make_text_pdf([f"page {i}" for i in range(5)]), Limits(max_pages=3))
    text = ("A sentence of filler text here. " * 100 + "\n\n") * 20  # ~64k chars
    with pytest.raises(TooManyPages):
        extract_document(text.encode(), Limits(max_pages=3))


@pytest.mark.parametrize("kind", ["docx", "epub"])
def test_zip_bomb_refused_before_inflating(kind):
    bomb = make_zip_bomb(kind, inflated_mb=50)
    assert len(bomb) < 200_000
    start = time.perf_counter()
    with pytest.raises(ArchiveBomb, match="zip bomb|expand"):
        extract_document(bomb)
    # Refused from the declared sizes: inflating 50 MB would take far longer than this.
    assert time.perf_counter() - start < 0.1


def test_zip_bomb_total_size_limit():
    bomb = make_zip_bomb("docx", inflated_mb=5)
    with pytest.raises(ArchiveBomb, match="limit is 1 MB"):
        extract_document(bomb, Limits(max_uncompressed_bytes=1 << 20, max_member_ratio=1e9))


def test_zip_member_lying_about_its_size_is_bounded():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", b"<" + b" " * (4 << 20))
    # Declared 10 KB: the ratio check passes, so only the bounded read can catch it.
    liar = lie_about_size(out.getvalue(), "word/document.xml", 10_000)
    with pytest.raises((ArchiveBomb, CorruptDocument)):
        extract_document(liar)


def test_unsupported_types():
    with pytest.raises(UnsupportedDocument, match="GIF"):
        extract_document(b"GIF89a" + b"\x00" * 100)
    with pytest.raises(CorruptDocument, match="image is damaged"):  # PNGs are read by OCR
        extract_document(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    with pytest.raises(UnsupportedDocument, match="binary"):
        extract_document(bytes(range(256)) * 10)
    other_zip = io.BytesIO()
    with zipfile.ZipFile(other_zip, "w") as zf:
        zf.writestr("notes.txt", "hello")
    with pytest.raises(UnsupportedDocument, match="neither DOCX nor EPUB"):
        extract_document(other_zip.getvalue())


def test_damaged_docx():
    data = make_docx([(0, "hello")])
    with pytest.raises(CorruptDocument):
        extract_document(data[: len(data) // 2])


def test_ten_megabytes_without_newline():
    words = "alpha beta gamma delta. " * 420_000  # ~10 MB, one line
    start = time.perf_counter()
    doc = extract_document(words.encode())
    chunks = chunk_text(doc.text, whitespace_token_counter, 200)
    elapsed = time.perf_counter() - start
    assert len(doc.text) > 10_000_000 - 100
    assert doc.stats.pages > 3000  # synthetic pages, cut at spaces
    assert chunks[-1].end == len(doc.text)
    assert max(c.tokens for c in chunks) <= 200
    assert elapsed < 30


def test_html_scripts_never_reach_the_text():
    html = b"<html><body><p>Visible words only.</p><script>alert('x')</script><style>p{}</style>"
    assert extract_document(html + b"</body></html>").text == "Visible words only."


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("report\x00.pdf", "report_.pdf"),
        ("отчёт 2024.pdf", "отчёт 2024.pdf"),
        ("契約書.docx", "契約書.docx"),
        ("..", "document"),
        ("", "document"),
        ("CON.txt", "_CON.txt"),
    ],
)
def test_safe_filename(name, expected):
    assert safe_filename(name) == expected


def test_safe_filename_cuts_long_names_and_keeps_extension():
    name = "ж" * 500 + ".pdf"
    safe = safe_filename(name)
    assert safe.endswith(".pdf")
    assert len(safe.encode()) <= 200
    assert set(safe[:-4]) == {"ж"}  # cut on a character boundary
