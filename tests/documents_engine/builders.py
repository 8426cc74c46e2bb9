"""Fixture documents generated in code: nothing is downloaded."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import docx


def make_docx(
    blocks: list[tuple[int, str]], title: str = "", table: list[list[str]] | None = None
) -> bytes:
    """(heading level, text) blocks; level 0 is a body paragraph."""
    document = docx.Document()
    if title:
        document.core_properties.title = title
    for level, text in blocks:
        if level:
            document.add_heading(text, level=level)
        else:
            document.add_paragraph(text)
    if table:
        t = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, cell in enumerate(row):
                t.cell(r, c).text = cell
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def make_epub(chapters: list[str], title: str = "A Book", doctype: str = "") -> bytes:
    """A minimal EPUB 3: chapters are XHTML bodies (HTML fragments), each file opened by
    ``doctype`` after its XML declaration."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")
        zf.writestr(
            "META-INF/container.xml",
            '<?xml version="1.0"?><container version="1.0" '
            'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
            '<rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
            "</rootfiles></container>",
        )
        items = "".join(
            f'<item id="c{i}" href="text/c{i}.xhtml" media-type="application/xhtml+xml"/>'
            for i in range(len(chapters))
        )
        # Spine in reverse manifest order, to prove the reader follows the spine.
        spine = "".join(f'<itemref idref="c{i}"/>' for i in range(len(chapters)))
        zf.writestr(
            "OEBPS/content.opf",
            '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0">'
            f'<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>{title}</dc:title>'
            f"</metadata><manifest>{items}</manifest><spine>{spine}</spine></package>",
        )
        for i, body in enumerate(chapters):
            zf.writestr(
                f"OEBPS/text/c{i}.xhtml",
                f'<?xml version="1.0"?>{doctype}<html xmlns="http://www.w3.org/1999/xhtml"><head>'
                f"<title>c{i}</title><style>p {{color: red}}</style></head>"
                f"<body>{body}</body></html>",
            )
    return out.getvalue()


def make_zip_bomb(kind: str = "docx", inflated_mb: int = 50) -> bytes:
    """A container whose one member inflates ~1000x (zeros compress extremely well)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        if kind == "docx":
            zf.writestr("[Content_Types].xml", "<Types/>")
            name = "word/document.xml"
        else:
            zf.writestr("mimetype", "application/epub+zip")
            zf.writestr("META-INF/container.xml", "<container/>")
            name = "OEBPS/big.xhtml"
        chunk = b"\0" * (1 << 20)
        with zf.open(name, "w", force_zip64=True) as member:
            for _ in range(inflated_mb):
                member.write(chunk)
    return out.getvalue()


def lie_about_size(data: bytes, member: str, declared: int) -> bytes:
    """Rewrite the declared uncompressed size of ``member`` in the central directory."""
    buf = bytearray(data)
    zf = zipfile.ZipFile(io.BytesIO(data))
    info = zf.getinfo(member)
    # Find the member's central directory record (signature PK\x01\x02) by its name.
    name = member.encode()
    pos = buf.find(b"PK\x01\x02")
    while pos != -1:
        name_len = int.from_bytes(buf[pos + 28 : pos + 30], "little")
        if bytes(buf[pos + 46 : pos + 46 + name_len]) == name:
            buf[pos + 24 : pos + 28] = declared.to_bytes(4, "little")
            assert info.file_size != declared
            return bytes(buf)
        pos = buf.find(b"PK\x01\x02", pos + 4)
    raise KeyError(member)


# -- Hostile files, generated small: each one is a known attack on a parser -------------------

_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
              for i in range(1, 10))
    + "]>"
)


def billion_laughs(root: str) -> str:
    """An XML document whose entity &lol9; expands to 10^9 "lol"s (a few hundred bytes)."""
    return _LAUGHS.replace("lolz", root.split()[0].strip("<>")) + root.replace("BODY", "&lol9;")


def docx_with_document_xml(xml: str) -> bytes:
    """A DOCX whose word/document.xml is ``xml`` (the rest copied from a valid file)."""
    base = zipfile.ZipFile(io.BytesIO(make_docx([(0, "placeholder")])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for info in base.infolist():
            body = xml.encode() if info.filename == "word/document.xml" else base.read(info)
            zf.writestr(info.filename, body)
    return out.getvalue()


_W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def docx_xml(body: str) -> str:
    return f'<w:document {_W}><w:body>{body}</w:body></w:document>'


def nested_docx_tables(depth: int) -> bytes:
    cell = "<w:p><w:r><w:t>deep</w:t></w:r></w:p>"
    for _ in range(depth):
        cell = f"<w:tbl><w:tr><w:tc>{cell}</w:tc></w:tr></w:tbl><w:p/>"
    return docx_with_document_xml(docx_xml(cell))


def nested_docx_list(items: int) -> bytes:
    """Many list paragraphs, cycling through all nine numbering levels."""
    para = ('<w:p><w:pPr><w:numPr><w:ilvl w:val="{level}"/><w:numId w:val="1"/></w:numPr>'
            "</w:pPr><w:r><w:t>item {i} at level {level}</w:t></w:r></w:p>")
    body = "".join(para.format(i=i, level=i % 9) for i in range(items))
    return docx_with_document_xml(docx_xml(body))


def epub_with(container: str | None = None, opf: str | None = None,
              chapter: str | None = None) -> bytes:
    """A valid EPUB with one of its XML parts replaced."""
    base = zipfile.ZipFile(io.BytesIO(make_epub(["<p>placeholder</p>"])))
    swap = {"META-INF/container.xml": container, "OEBPS/content.opf": opf,
            "OEBPS/text/c0.xhtml": chapter}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for info in base.infolist():
            body = swap.get(info.filename)
            zf.writestr(info, body.encode() if body is not None else base.read(info))
    return out.getvalue()


def zip_with_entries(count: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("word/document.xml", "<w:document/>")
        for i in range(count):
            zf.writestr(f"f/{i}", b"")
    return out.getvalue()


def raw_pdf(objects: list[bytes], root: int = 1, extra_xref: int = 0) -> bytes:
    """A PDF from numbered object bodies (object i+1 = objects[i]) with a correct xref;
    ``extra_xref`` declares that many more (free) entries than there are objects."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    size = len(objects) + 1 + extra_xref
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"0000000000 65535 f \n" * extra_xref
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, root, xref)
    return bytes(out)


def _page_objects(text: str = "Hello page") -> list[bytes]:
    stream = b"BT /F1 24 Tf 72 700 Td (%s) Tj ET" % text.encode()
    return [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]


def pdf_with_many_objects(count: int) -> bytes:
    """A one-page PDF carrying ``count`` extra (unused) objects in its xref."""
    return raw_pdf(_page_objects() + [b"null"] * count)


def pdf_with_huge_xref(declared: int) -> bytes:
    return raw_pdf(_page_objects(), extra_xref=declared)


def pdf_with_page_tree_loop() -> bytes:
    """The page tree's /Kids point back at the tree itself (2 → 6 → 2)."""
    objects = _page_objects()
    objects[1] = b"<< /Type /Pages /Kids [6 0 R 3 0 R] /Count 2 >>"
    objects.append(b"<< /Type /Pages /Parent 2 0 R /Kids [2 0 R] /Count 1 >>")
    return raw_pdf(objects)


def zip_with_directory_offset_shifted(data: bytes, shift: int = 10_000) -> bytes:
    """Move the end record's "central directory starts at" past where it is: zipfile then
    computes a negative start for the archive (the fuzzer's first docx finding)."""
    buf = bytearray(data)
    eocd = buf.rfind(b"PK\x05\x06")
    offset = int.from_bytes(buf[eocd + 16 : eocd + 20], "little")
    buf[eocd + 16 : eocd + 20] = (offset + shift).to_bytes(4, "little")
    return bytes(buf)


def zip_needing_version(data: bytes, version: int = 236) -> bytes:
    """Claim in the central directory that the first member needs zip version 23.6."""
    buf = bytearray(data)
    directory = buf.find(b"PK\x01\x02")
    buf[directory + 6] = version
    return bytes(buf)


def zip_with_broken_deflate(data: bytes, member: str) -> bytes:
    """Overwrite the start of ``member``'s compressed data with an invalid deflate block."""
    buf = bytearray(data)
    name = member.encode()
    pos = buf.find(b"PK\x03\x04")
    while pos != -1:
        name_len = int.from_bytes(buf[pos + 26 : pos + 28], "little")
        extra_len = int.from_bytes(buf[pos + 28 : pos + 30], "little")
        if bytes(buf[pos + 30 : pos + 30 + name_len]) == name:
            start = pos + 30 + name_len + extra_len
            buf[start : start + 8] = b"\xff" * 8  # block type 3: reserved, invalid
            return bytes(buf)
        pos = buf.find(b"PK\x03\x04", pos + 4)
    raise KeyError(member)


def zip_with_unnamed_member(data: bytes) -> bytes:
    """Add a member whose name is empty (zipfile's is_dir() raised IndexError on it)."""
    out = io.BytesIO(data)
    with zipfile.ZipFile(out, "a") as zf:
        zf.writestr(zipfile.ZipInfo(""), b"nameless")
    return out.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` × ``height`` over a few bytes of data."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + chunk(b"IEND", b""))
