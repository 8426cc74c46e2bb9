"""Upload file names: safe to store and show, without losing non-Latin names."""

from __future__ import annotations

import re
import unicodedata

# Bidirectional controls too: "invoice\u202egpj.exe" would show as "invoiceexe.jpg".
_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]')
_RESERVED = {
    "con",
    "prn",
    "aux",
    "nul",
    *(f"com{i}" for i in range(1, 10)),
    *(f"lpt{i}" for i in range(1, 10)),
}


def safe_filename(name: str, max_bytes: int = 200, default: str = "document") -> str:
    """A single path component: no directories, NULs, control or shell-hostile characters.

    Keeps letters of every script (they are valid names), cuts long names to ``max_bytes`` of
    UTF-8 while keeping the extension, and never returns ``""``, ``.`` or ``..``.
    """
    name = unicodedata.normalize("NFC", name or "")
    # Only the last path component counts: "../../etc/passwd" -> "passwd".
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name)
    name = " ".join(name.split()).strip(" .")
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    ext = ext[:16]
    if stem.lower() in _RESERVED:
        stem = f"_{stem}"
    if not stem:
        stem = default
    suffix = f".{ext}" if ext else ""
    budget = max_bytes - len(suffix.encode())
    encoded = stem.encode()
    if len(encoded) > budget:
        # Cut on a character boundary, never in the middle of a multi-byte character.
        stem = encoded[:budget].decode("utf-8", errors="ignore").rstrip(" .") or default
    return stem + suffix
