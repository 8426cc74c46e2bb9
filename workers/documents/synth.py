"""Synthetic documents for tests and the benchmark, generated in code (nothing downloaded).

``make_text_pdf`` writes a minimal but valid PDF (Helvetica, one text object per page),
``filler_text`` gives essay-like prose, from the Paul Graham essays when a folder is given.
"""

from __future__ import annotations

import random
import textwrap
import zlib
from pathlib import Path

_WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "a",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "he",
    "this",
    "are",
    "or",
    "his",
    "from",
    "at",
    "which",
    "but",
    "have",
    "an",
    "they",
    "you",
    "were",
    "her",
    "she",
    "there",
    "one",
    "all",
    "we",
    "their",
    "can",
    "has",
    "been",
    "if",
    "more",
    "when",
    "will",
    "would",
    "who",
    "so",
    "no",
    "time",
    "people",
    "years",
    "work",
    "make",
    "way",
    "many",
    "first",
    "new",
    "could",
    "also",
    "after",
    "market",
    "company",
    "city",
    "river",
    "growth",
    "idea",
    "system",
    "report",
    "evidence",
    "value",
    "language",
    "history",
    "analysis",
    "question",
    "answer",
    "result",
    "method",
    "paper",
    "team",
    "model",
    "water",
    "light",
    "field",
    "number",
]


def _pdf_escape(line: str) -> str:
    line = line.encode("latin-1", "replace").decode("latin-1")
    return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_text_pdf(
    pages: list[str], title: str = "", image_only: bool = False, compress: bool = True
) -> bytes:
    """A PDF with one page per string (text wrapped at 90 columns), or image-only pages."""
    objects: list[bytes] = []  # object i+1

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")  # filled in at the end
    pages_id = add(b"")
    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    image = add(
        b"<< /Type /XObject /Subtype /Image /Width 2 /Height 2 /ColorSpace /DeviceGray "
        b"/BitsPerComponent 8 /Length 4 >>\nstream\n\x00\xff\xff\x00\nendstream"
    )
    kids = []
    for text in pages:
        if image_only:
            ops = "q 400 0 0 400 100 300 cm /Im1 Do Q"
        else:
            lines = [
                wrapped
                for para in text.split("\n")
                for wrapped in (textwrap.wrap(para, 90) or [""])
            ]
            body = " T*\n".join(f"({_pdf_escape(line)}) Tj" for line in lines)
            ops = f"BT /F1 10 Tf 12 TL 50 800 Td\n{body}\nET"
        raw = ops.encode("latin-1")
        if compress:
            data = zlib.compress(raw)
            stream = b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(data)
        else:
            data = raw
            stream = b"<< /Length %d >>\nstream\n" % len(data)
        content = add(stream + data + b"\nendstream")
        kids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 595 842] /Contents %d 0 R "
                b"/Resources << /Font << /F1 %d 0 R >> /XObject << /Im1 %d 0 R >> >> >>"
                % (pages_id, content, font, image)
            )
        )
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % pages_id
    objects[pages_id - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids),
        len(kids),
    )
    info = add(b"<< /Title (%s) >>" % _pdf_escape(title).encode("latin-1")) if title else 0
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    trailer = b"<< /Size %d /Root %d 0 R" % (len(objects) + 1, catalog)
    if info:
        trailer += b" /Info %d 0 R" % info
    out += b"trailer\n" + trailer + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def generated_sentences(rng: random.Random) -> str:
    words = rng.choices(_WORDS, k=rng.randint(8, 20))
    return " ".join(words).capitalize() + "."


def load_essays(folder: Path | str | None) -> list[str]:
    """Paragraphs of the essays in ``folder`` (``*.txt``, searched recursively), or []."""
    if folder is None or not Path(folder).exists():
        return []
    paragraphs: list[str] = []
    for path in sorted(Path(folder).rglob("*.txt")):
        text = path.read_text(encoding="utf-8", errors="replace")
        paragraphs.extend(" ".join(p.split()) for p in text.split("\n\n") if len(p.split()) > 5)
    return paragraphs


def filler_text(n_chars: int, rng: random.Random, essays: list[str] | None = None) -> str:
    """About ``n_chars`` of prose in paragraphs: essay paragraphs from a random start, else
    generated sentences."""
    parts: list[str] = []
    size = 0
    if essays:
        i = rng.randrange(len(essays))
        while size < n_chars:
            parts.append(essays[i % len(essays)])
            size += len(parts[-1]) + 2
            i += 1
    else:
        while size < n_chars:
            para = " ".join(generated_sentences(rng) for _ in range(rng.randint(3, 7)))
            parts.append(para)
            size += len(para) + 2
    text = "\n\n".join(parts)
    if len(text) > n_chars:
        # Essay paragraphs can be long: trim to the last full sentence within the budget.
        end = text.rfind(". ", 0, n_chars)
        text = text[: end + 1] if end > n_chars // 2 else text[:n_chars]
    return text
