"""Fixture documents generated in code: nothing is downloaded."""

from __future__ import annotations

import io
import zipfile

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


def make_epub(chapters: list[str], title: str = "A Book") -> bytes:
    """A minimal EPUB 3: chapters are XHTML bodies (HTML fragments)."""
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
                '<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><head>'
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
