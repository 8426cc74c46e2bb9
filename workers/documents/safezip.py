"""Reading DOCX/EPUB containers without letting a zip bomb inflate.

Declared sizes and ratios are checked before any member is read; then every member is
inflated in bounded reads, because a crafted archive can declare small sizes and lie.
"""

from __future__ import annotations

import io
import zipfile

from .errors import ArchiveBomb, CorruptDocument
from .limits import DEFAULT_LIMITS, Limits

_READ_CHUNK = 1 << 16


def open_zip(data: bytes) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CorruptDocument("the archive is damaged and cannot be opened") from exc


def check_declared_sizes(zf: zipfile.ZipFile, limits: Limits = DEFAULT_LIMITS) -> None:
    """Refuse archives whose *declared* expansion is excessive, before inflating anything."""
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        raise ArchiveBomb(f"the archive has {len(infos)} files; the limit is {limits.max_members}")
    total = sum(info.file_size for info in infos)
    if total > limits.max_uncompressed_bytes:
        raise ArchiveBomb(
            f"the archive would expand to {total // 2**20} MB; "
            f"the limit is {limits.max_uncompressed_bytes // 2**20} MB"
        )
    for info in infos:
        # Small members may compress extremely well (runs of spaces in XML): only judge
        # the ratio of members that are big in absolute terms.
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > 1 << 20 and ratio > limits.max_member_ratio:
            raise ArchiveBomb(
                f"'{info.filename}' would expand {ratio:.0f}x; this looks like a zip bomb"
            )


def read_members(
    zf: zipfile.ZipFile, names: list[str] | None = None, limits: Limits = DEFAULT_LIMITS
) -> dict[str, bytes]:
    """Inflate members with a hard budget that does not trust the declared sizes."""
    check_declared_sizes(zf, limits)
    budget = limits.max_uncompressed_bytes
    out: dict[str, bytes] = {}
    wanted = set(names) if names is not None else None
    for info in zf.infolist():
        if info.is_dir() or (wanted is not None and info.filename not in wanted):
            continue
        buf = bytearray()
        try:
            with zf.open(info) as member:
                while chunk := member.read(_READ_CHUNK):
                    buf += chunk
                    # Declared size is a promise; more than promised means a lying header.
                    if len(buf) > info.file_size or len(buf) > budget:
                        raise ArchiveBomb(
                            f"'{info.filename}' inflates past its declared size; refusing it"
                        )
        except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError) as exc:
            raise CorruptDocument(f"the archive member '{info.filename}' is damaged") from exc
        budget -= len(buf)
        out[info.filename] = bytes(buf)
    return out


def safe_zip_bytes(data: bytes, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """Re-pack an archive after bounded inflation, so third-party readers (python-docx) only
    ever see members whose real size we have checked."""
    members = read_members(open_zip(data), limits=limits)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return out.getvalue()
