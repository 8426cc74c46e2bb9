"""Detect a document's type from its bytes; the file name's extension is never trusted."""

from __future__ import annotations

import codecs
import re
import zipfile

from .errors import DocumentTooLarge, EmptyDocument, UnsupportedDocument
from .limits import DEFAULT_LIMITS, Limits
from .safezip import open_zip

PDF, DOCX, EPUB, HTML, MARKDOWN, TEXT = "pdf", "docx", "epub", "html", "markdown", "text"

# Well-known binary formats, so the refusal can say what the file is.
_MAGIC = [
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"\x7fELF", "a program"),
    (b"MZ", "a Windows program"),
    (b"\xd0\xcf\x11\xe0", "a legacy Office file (.doc/.xls); save it as DOCX or PDF"),
    (b"{\\rtf", "an RTF file; save it as DOCX or PDF"),
]
_HTML_START = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body)\b", re.I | re.S)
_HTML_TAGS = re.compile(rb"<(p|div|h[1-6]|table|span|a\s|br|ul|li)\b[^>]*>", re.I)
_MD_SIGNALS = [
    re.compile(r"^#{1,6} \S", re.M),
    re.compile(r"^```", re.M),
    re.compile(r"^\s{0,3}[-*+] \S", re.M),
    re.compile(r"\[[^\]\n]+\]\([^)\s]+\)"),
    re.compile(r"^\s{0,3}> \S", re.M),
    re.compile(r"(\*\*|__)\S[^\n]*?\S\1"),
]


def sniff(data: bytes, limits: Limits = DEFAULT_LIMITS) -> str:
    """Return one of ``pdf, docx, epub, html, markdown, text`` or raise a DocumentError."""
    if not data:
        raise EmptyDocument("the file is empty (0 bytes)")
    if len(data) > limits.max_bytes:
        raise DocumentTooLarge(
            f"the file is {len(data) / 2**20:.1f} MB; "
            f"the limit is {limits.max_bytes / 2**20:.0f} MB"
        )
    # The PDF header may follow some junk within the first 1 KB (the spec allows it).
    if b"%PDF-" in data[:1024]:
        return PDF
    if data.startswith(b"PK\x03\x04"):
        return _sniff_zip(data)
    for magic, what in _MAGIC:
        if data.startswith(magic):
            raise UnsupportedDocument(f"unsupported file type: {what}")
    text = decode_text(data)
    head = data[:4096]
    if _HTML_START.match(head) or len(_HTML_TAGS.findall(head)) >= 3:
        return HTML
    sample = text[:20_000]
    if _MD_SIGNALS[0].search(sample) or sum(bool(p.search(sample)) for p in _MD_SIGNALS) >= 2:
        return MARKDOWN
    return TEXT


def _sniff_zip(data: bytes) -> str:
    zf = open_zip(data)
    names = set(zf.namelist())
    if "word/document.xml" in names:
        return DOCX
    if "META-INF/container.xml" in names or _zip_mimetype(zf) == "application/epub+zip":
        return EPUB
    raise UnsupportedDocument("unsupported file type: a zip archive that is neither DOCX nor EPUB")


def _zip_mimetype(zf: zipfile.ZipFile) -> str:
    try:
        info = zf.getinfo("mimetype")
    except KeyError:
        return ""
    if info.file_size > 100:
        return ""
    with zf.open(info) as f:
        return f.read(100).decode("ascii", "replace").strip()


def decode_text(data: bytes) -> str:
    """Decode text bytes, or refuse them as binary.

    UTF-8 (with or without BOM) and UTF-16 with a BOM are accepted; otherwise Windows-1252,
    provided the result looks like text (legacy exports are common). NUL bytes mean binary.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise UnsupportedDocument("unsupported file type: invalid UTF-16 text") from exc
    if b"\x00" in data:
        raise UnsupportedDocument("unsupported file type: binary data (contains NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    text = data.decode("cp1252", errors="replace")
    sample = text[:100_000]
    bad = sum(1 for c in sample if c == "\ufffd" or (ord(c) < 32 and c not in "\t\n\r\f"))
    if bad > len(sample) * 0.01:
        raise UnsupportedDocument("unsupported file type: binary data, not text")
    return text
