"""Markdown to DOCX and PDF through well-kept converters: pandoc (its binary wheel) writes
the DOCX with real headings, emphasis, lists and footnotes, and the Typst markup that the
Typst compiler (its wheel, fonts included) turns into a PDF.

The Markdown holds model output and document text, so nothing in it may act as code: raw
HTML, TeX, Typst and OpenXML passthroughs are switched off, pandoc runs with
``--sandbox`` (no file or network access), a memory cap and a deadline, and Typst compiles
in an empty folder of its own.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pypandoc
import typst

EXPORT_SECONDS = 60
PANDOC_MEMORY = "512m"
# Pandoc's Markdown with every raw passthrough off (``{=typst}``, ``{=openxml}``, HTML, TeX).
SOURCE_FORMAT = "markdown-raw_html-raw_tex-raw_attribute-tex_math_dollars"
_CONTROL = str.maketrans({c: None for c in range(32) if c not in (9, 10, 13)})


class ExportFailed(Exception):
    """The converter refused or ran out of time or memory; the message says which."""


def clean(markdown: str) -> str:
    """Without the control characters XML cannot hold (a model can emit them)."""
    return markdown.translate(_CONTROL)


def _pandoc(markdown: str, to: str, title: str, out: Path | None = None) -> bytes:
    args = [pypandoc.get_pandoc_path(), "+RTS", f"-M{PANDOC_MEMORY}", "-RTS", "--sandbox",
            "-f", SOURCE_FORMAT, "-t", to, "--standalone", "--metadata", f"title={title}"]
    if out is not None:
        args += ["-o", str(out)]
    try:
        done = subprocess.run(args, input=clean(markdown).encode(), capture_output=True,
                              timeout=EXPORT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        raise ExportFailed(f"the converter took longer than {EXPORT_SECONDS} s") from None
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
        raise ExportFailed(f"the converter failed: {reason[0][:300]}")
    return out.read_bytes() if out is not None else done.stdout


def to_docx(markdown: str, title: str) -> bytes:
    with tempfile.TemporaryDirectory(prefix="export-") as folder:
        return _pandoc(markdown, "docx", title, Path(folder) / "out.docx")


def to_pdf(markdown: str, title: str) -> bytes:
    source = _pandoc(markdown, "typst", title).decode()
    with tempfile.TemporaryDirectory(prefix="export-") as folder:
        path = Path(folder) / "main.typ"
        path.write_text(source, encoding="utf-8")
        try:  # root: the folder itself, so the document can read no other file
            return typst.compile(str(path), root=folder)
        except RuntimeError as err:
            raise ExportFailed(f"the PDF could not be made: {str(err)[:300]}") from None


def footnote_markdown(text: str, notes: list[str]) -> str:
    """``text`` followed by its notes as numbered footnotes ([^1] … in the order given);
    the caller puts the markers ``[^n]`` in the text."""
    lines = [text.rstrip(), ""]
    lines += [f"[^{i}]: {' '.join(note.split())}" for i, note in enumerate(notes, start=1)]
    return "\n".join(lines) + "\n"


def escape(text: str) -> str:
    """Plain text as Markdown that renders as the same text (no heading, list, emphasis or
    footnote made by accident from a document's or a model's characters)."""
    out = []
    for ch in text:
        if ch in "\\`*_{}[]<>()#+-.!|~^$@":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)
