"""Reading DOCX/EPUB containers without letting a zip bomb inflate.

Declared sizes and ratios are checked before any member is read; then every member is
inflated in bounded reads, because a crafted archive can declare small sizes and lie.
"""

from __future__ import annotations

import io
import zipfile
import zlib

from .errors import ArchiveBomb, CorruptDocument
from .limits import DEFAULT_LIMITS, Limits

_READ_CHUNK = 1 << 16
# What zipfile raises on damaged or unsupported archives besides BadZipFile; python -m bench
# fuzz found ValueError ("negative seek value"), NotImplementedError ("zip file version")
# and zlib.error; RuntimeError is an encrypted member.
ZIP_DAMAGE = (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError,
              RuntimeError, zlib.error)
# The end-of-directory record: 22 bytes plus a comment of at most 64 KB.
_EOCD_SEARCH = 22 + 0xFFFF


def open_zip(data: bytes, limits: Limits = DEFAULT_LIMITS) -> zipfile.ZipFile:
    declared = declared_entries(data)
    if declared > limits.max_members:
        # Refused before zipfile reads the directory: a million entries cost seconds and GBs.
        raise ArchiveBomb(f"the archive has {declared} files; the limit is {limits.max_members}")
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except ZIP_DAMAGE as exc:
        raise CorruptDocument("the archive is damaged and cannot be opened") from exc


def declared_entries(data: bytes) -> int:
    """The entry count the end-of-directory record declares (zip64 too); 0 when none found
    (zipfile then reports the damage)."""
    eocd = data.rfind(b"PK\x05\x06", max(0, len(data) - _EOCD_SEARCH))
    if eocd == -1 or eocd + 22 > len(data):
        return 0
    entries = int.from_bytes(data[eocd + 10 : eocd + 12], "little")
    locator = eocd - 20
    if entries == 0xFFFF and locator >= 0 and data.startswith(b"PK\x06\x07", locator):
        record = int.from_bytes(data[locator + 8 : locator + 16], "little")
        if data.startswith(b"PK\x06\x06", record):
            entries = int.from_bytes(data[record + 32 : record + 40], "little")
    return entries


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
        # Not info.is_dir(): it raises IndexError on a member with an empty name (fuzzing).
        if not info.filename or info.filename.endswith("/") or (
            wanted is not None and info.filename not in wanted
        ):
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
        except ZIP_DAMAGE as exc:
            raise CorruptDocument(
                f"the archive member '{info.filename}' is damaged or encrypted"
            ) from exc
        budget -= len(buf)
        out[info.filename] = bytes(buf)
    return out


def safe_zip_bytes(data: bytes, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """Re-pack an archive after bounded inflation, so third-party readers (python-docx) only
    ever see members whose real size we have checked."""
    members = read_members(open_zip(data, limits), limits=limits)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return out.getvalue()
