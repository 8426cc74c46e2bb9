"""Sniffing and extraction of untrusted bytes in a child process, under limits.

The child is ``python -m workers.documents.sandbox <op> <limits>``: it reads the upload from
stdin, caps its own CPU time (RLIMIT_CPU) and address space (RLIMIT_AS) once the reader's
modules are loaded, and writes its answer to stdout as JSON (never pickle: the child has
read hostile bytes, so the parent trusts nothing it says beyond plain data). The parent adds
a wall-clock deadline and kills the child past it. A plain subprocess rather than
multiprocessing: Celery's prefork workers are daemonic and may not have multiprocessing
children, and a fresh interpreter shares no state (locks, threads) with the caller.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import resource
import signal
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from .document import ExtractedDocument, Heading
from .errors import (
    CorruptDocument,
    DocumentError,
    ParseMemory,
    ParserCrashed,
    ParseTimeout,
)
from .limits import DEFAULT_LIMITS, Limits

_ROOT = Path(__file__).resolve().parents[2]
# Interpreter start and imports (~0.4 s on an idle core) on a busy machine, before the CPU
# budget starts counting; the wall-clock deadline allows for them.
_STARTUP_SECONDS = 15.0
_ERRORS = {cls.code: cls for cls in (DocumentError, *DocumentError.__subclasses__())}


def sniff_sandboxed(data: bytes, limits: Limits = DEFAULT_LIMITS) -> str:
    """``sniff`` in a child process: one of ``pdf, docx, epub, html, markdown, text``."""
    return _run("sniff", data, limits)["kind"]


def extract_sandboxed(data: bytes, limits: Limits = DEFAULT_LIMITS) -> ExtractedDocument:
    """``extract_document`` in a child process; raises the same ``DocumentError``s, plus
    ``ParseTimeout`` / ``ParseMemory`` / ``ParserCrashed`` when the child hits a limit."""
    return _document(_run("extract", data, limits)["document"])


def _too_slow(limits: Limits) -> ParseTimeout:
    return ParseTimeout(f"the file took longer than {limits.parse_seconds:g} s to read")


def _too_big(limits: Limits) -> ParseMemory:
    return ParseMemory(f"the file needs more than {limits.parse_memory_mb} MB to read")


def _run(op: str, data: bytes, limits: Limits) -> dict:
    # A bare environment: the child needs no secrets, and a parser bug must not reach them.
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(_ROOT),
        "LC_ALL": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "workers.documents.sandbox", op, json.dumps(asdict(limits))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=_ROOT,
    )
    deadline = 2 * limits.parse_seconds + _STARTUP_SECONDS
    try:
        out, err = proc.communicate(data, timeout=deadline)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise _too_slow(limits) from None
    if proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        raise _too_slow(limits)
    try:
        answer = json.loads(out)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        tail = err.decode("utf-8", "replace").strip()
        if "MemoryError" in tail[-300:] or "bad_alloc" in tail[-300:]:
            raise _too_big(limits)
        if proc.returncode >= 0:  # a Python exception the reader should have turned into ours
            kind = tail.rsplit("\n", 1)[-1].split(":", 1)[0].strip()[-60:]
            raise ParserCrashed(f"the file could not be read (the reader failed: {kind})")
        how = f"signal {-proc.returncode}"
        with contextlib.suppress(ValueError):
            how = f"signal {signal.Signals(-proc.returncode).name}"
        # Native readers abort when an allocation fails, so a crash may be the memory cap.
        raise ParserCrashed(
            f"the reader stopped on this file ({how}): it is damaged or needs more than "
            f"{limits.parse_memory_mb} MB to read"
        )
    if "error" in answer:
        error = answer["error"]
        raise _ERRORS.get(error.get("code"), DocumentError)(str(error.get("message")))
    if answer.get("memory"):
        raise _too_big(limits)
    return answer


def _document(raw: dict) -> ExtractedDocument:
    return ExtractedDocument(
        kind=raw["kind"],
        text=raw["text"],
        page_map=[(int(s), int(n)) for s, n in raw["page_map"]],
        title=raw["title"],
        headings=[Heading(int(lv), str(t), int(s)) for lv, t, s in raw["headings"]],
        synthetic_pages=bool(raw["synthetic_pages"]),
    )


def _encode(doc: ExtractedDocument) -> dict:
    return {
        "kind": doc.kind,
        "text": doc.text,
        "page_map": doc.page_map,
        "title": doc.title,
        "headings": [(h.level, h.text, h.start) for h in doc.headings],
        "synthetic_pages": doc.synthetic_pages,
    }


def _address_space() -> int:
    """Bytes of address space this process maps now (Linux); 0 where unknown."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _limit_self(limits: Limits) -> None:
    """Cap CPU and memory from here on; what the interpreter and modules took is not counted."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = math.ceil(usage.ru_utime + usage.ru_stime + limits.parse_seconds)
    # Past the soft limit the kernel sends SIGXCPU (fatal); past the hard one, SIGKILL.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    baseline = _address_space()
    if baseline:
        cap = baseline + limits.parse_memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def _child(op: str, limits: Limits, data: bytes) -> dict:
    # Only the child loads the parsers (pypdf, python-docx, trafilatura): the parent stays
    # light and never runs their code on hostile bytes.
    from .extract import extract_document
    from .sniff import sniff

    _limit_self(limits)
    try:
        if op == "sniff":
            return {"kind": sniff(data, limits)}
        return {"document": _encode(extract_document(data, limits))}
    except DocumentError as err:
        return {"error": {"code": err.code, "message": err.message}}
    except MemoryError:
        return {"memory": True}
    except RecursionError:
        err = CorruptDocument("the file is nested too deeply to read")
        return {"error": {"code": err.code, "message": err.message}}


def main(argv: list[str]) -> int:
    op, limits = argv[1], Limits(**json.loads(argv[2]))
    if op not in ("sniff", "extract"):
        raise ValueError(f"unknown operation {op!r}")
    data = sys.stdin.buffer.read()
    answer = _child(op, limits, data)
    del data
    try:
        out = json.dumps(answer).encode("ascii")  # \u escapes carry any str, lone surrogates too
    except MemoryError:
        out = b'{"memory": true}'
    sys.stdout.buffer.write(out)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
