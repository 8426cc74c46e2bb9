"""Detect a document's type from its bytes; the file name's extension is never trusted."""

from __future__ import annotations

import codecs
import re
import zipfile

from .errors import DocumentTooLarge, EmptyDocument, UnsupportedDocument
from .limits import DEFAULT_LIMITS, Limits
from .safezip import ZIP_DAMAGE, open_zip

PDF, DOCX, EPUB, HTML, MARKDOWN, TEXT = "pdf", "docx", "epub", "html", "markdown", "text"
PNG, JPEG, TIFF = "png", "jpeg", "tiff"  # read by OCR

# Images OCR reads, by their magic numbers (TIFF: little- or big-endian byte order).
_IMAGES = [
    (b"\x89PNG\r\n\x1a\n", PNG),
    (b"\xff\xd8\xff", JPEG),
    (b"II*\x00", TIFF),
    (b"MM\x00*", TIFF),
]

# Well-known binary formats, so the refusal can say what the file is.
_MAGIC = [
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"\x7fELF", "a program"),
    (b"MZ", "a Windows program"),
    (b"\xd0\xcf\x11\xe0", "a legacy Office file (.doc/.xls); save it as DOCX or PDF"),
    (b"{\\rtf", "an RTF file; save it as DOCX or PDF"),
]
# Sniffing only ever looks at this much of a file (plus the zip directory), so its cost is
# bounded whatever the upload. Every pattern below is linear in its input: no nested or
# overlapping repetition, and each open-ended run stops at a character that also stops the
# next attempt (a pattern that failed at one "[" is not re-run over the same run from the next).
SNIFF_BYTES = 64 * 1024
_HTML_ROOT = re.compile(rb"<(!doctype\s+html|html|head|body)\b", re.I)
_HTML_TAGS = re.compile(rb"<(p|div|h[1-6]|table|span|a\s|br|ul|li)\b[^<>]*>", re.I)
_MD_SIGNALS = [
    re.compile(r"^#{1,6} \S", re.M),
    re.compile(r"^```", re.M),
    re.compile(r"^\s{0,3}[-*+] \S", re.M),
    re.compile(r"\[[^\[\]\n]+\]\([^()\s]+\)"),
    re.compile(r"^\s{0,3}> \S", re.M),
    re.compile(r"(\*\*|__)\S[^\n]{0,200}?\S\1"),
]


def sniff(data: bytes, limits: Limits = DEFAULT_LIMITS) -> str:
    """Return one of ``pdf, docx, epub, png, jpeg, tiff, html, markdown, text`` or raise a
    DocumentError."""
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
        return _sniff_zip(data, limits)
    for magic, kind in _IMAGES:
        if data.startswith(magic):
            return kind
    for magic, what in _MAGIC:
        if data.startswith(magic):
            raise UnsupportedDocument(f"unsupported file type: {what}")
    text = decode_text(data[:SNIFF_BYTES], partial=len(data) > SNIFF_BYTES)
    head = data[:4096]
    if _starts_as_html(head) or len(_HTML_TAGS.findall(head)) >= 3:
        return HTML
    sample = text[:20_000]
    if _MD_SIGNALS[0].search(sample) or sum(bool(p.search(sample)) for p in _MD_SIGNALS) >= 2:
        return MARKDOWN
    return TEXT


def _starts_as_html(head: bytes) -> bool:
    """Whitespace and comments, then a root tag. A loop, not a regex: ``(<!--.*?-->\\s*)*``
    backtracks exponentially on a run of comments that is not followed by a tag."""
    pos = len(head) - len(head.lstrip())
    while head.startswith(b"<!--", pos):
        end = head.find(b"-->", pos + 4)
        if end == -1:
            return False
        rest = head[end + 3 :]
        pos = len(head) - len(rest.lstrip())
    return _HTML_ROOT.match(head, pos) is not None


def _sniff_zip(data: bytes, limits: Limits) -> str:
    zf = open_zip(data, limits)
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
    try:
        with zf.open(info) as f:
            return f.read(100).decode("ascii", "replace").strip()
    except ZIP_DAMAGE:
        return ""


def decode_text(data: bytes, partial: bool = False) -> str:
    """Decode text bytes, or refuse them as binary.

    UTF-8 (with or without BOM) and UTF-16 with a BOM are accepted; otherwise each byte that
    is not UTF-8 is read as Windows-1252 (legacy exports, and UTF-8 text with legacy bytes
    pasted in), provided the result looks like text. NUL bytes mean binary.
    ``partial``: ``data`` is a prefix, so a character cut at its end is not an error.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return _decode("utf-16", data, partial)
        except UnicodeDecodeError as exc:
            raise UnsupportedDocument("unsupported file type: invalid UTF-16 text") from exc
    if b"\x00" in data:
        raise UnsupportedDocument("unsupported file type: binary data (contains NUL bytes)")
    try:
        return _decode("utf-8-sig", data, partial)
    except UnicodeDecodeError:
        pass
    text = _decode("utf-8-sig", data, partial, errors=_CP1252_FALLBACK)
    sample = text[:100_000]
    bad = sum(1 for c in sample if c == "\ufffd" or (ord(c) < 32 and c not in "\t\n\r\f"))
    if bad > len(sample) * 0.01:
        raise UnsupportedDocument("unsupported file type: binary data, not text")
    return text


def _decode(encoding: str, data: bytes, partial: bool, errors: str = "strict") -> str:
    return codecs.getincrementaldecoder(encoding)(errors).decode(data, final=not partial)


def _read_as_cp1252(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return exc.object[exc.start : exc.end].decode("cp1252", errors="replace"), exc.end


_CP1252_FALLBACK = "scriptorium-cp1252-fallback"
codecs.register_error(_CP1252_FALLBACK, _read_as_cp1252)
