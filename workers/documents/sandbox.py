"""Sniffing and extraction of untrusted bytes in a child process, under limits.

The child is ``python -m workers.documents.sandbox <op> <limits>``: it reads the upload from
stdin, caps its own CPU time (RLIMIT_CPU) and address space (RLIMIT_AS) once the reader's
modules are loaded, and writes its answer to stdout as JSON (never pickle: the child has
read hostile bytes, so the parent trusts nothing it says beyond plain data). The parent adds
a wall-clock deadline and kills the child past it. A plain subprocess rather than
multiprocessing: Celery's prefork workers are daemonic and may not have multiprocessing
children, and a fresh interpreter shares no state (locks, threads) with the caller.

OCR reads a document page by page, so its cost scales with the pages: each page it starts is
a step that the child reports on a pipe of its own, and each step gets its own CPU allowance
(``Limits.ocr_page_seconds``, on top of ``parse_seconds``) in the child and its own
wall-clock deadline in the parent; the OCR engine's memory (``ocr_memory_mb``) is allowed
from the first step on. The parent builds the progress message itself from two numbers.
A page past either limit ends alone: in the child, SIGXCPU (its CPU allowance) or SIGUSR1
(the parent's deadline for the step) raises ``PageTimeout`` inside the page while one is
read (``_page_guard``), the page is left unreadable and the next gets a fresh allowance; a
child that does not come back from the page within another allowance is killed.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import resource
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
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
from .ocr_progress import step_message

Progress = Callable[[int, int, str], None]  # (done, total, message)

_ROOT = Path(__file__).resolve().parents[2]
# Interpreter start and imports (~0.4 s on an idle core) on a busy machine, before the CPU
# budget starts counting; the wall-clock deadline allows for them.
_STARTUP_SECONDS = 15.0
_ERRORS = {cls.code: cls for cls in (DocumentError, *DocumentError.__subclasses__())}


def sniff_sandboxed(data: bytes, limits: Limits = DEFAULT_LIMITS) -> str:
    """``sniff`` in a child process: the kind ``sniff`` names (pdf, docx, png, ...)."""
    return _run("sniff", data, limits)["kind"]


def extract_sandboxed(
    data: bytes, limits: Limits = DEFAULT_LIMITS, progress: Progress | None = None
) -> ExtractedDocument:
    """``extract_document`` in a child process; raises the same ``DocumentError``s, plus
    ``ParseTimeout`` / ``ParseMemory`` / ``ParserCrashed`` when the child hits a limit.
    ``progress(done, total, message)`` hears each page OCR reads."""
    return _document(_run("extract", data, limits, progress)["document"])


def _too_slow(limits: Limits, step: tuple[int, int] | None = None) -> ParseTimeout:
    if step and step[0] < step[1]:
        return ParseTimeout(f"OCR of page {step[0] + 1} of {step[1]} took longer than "
                            f"{limits.ocr_page_seconds:g} s")
    return ParseTimeout(f"the file took longer than {limits.parse_seconds:g} s to read")


def _too_big(limits: Limits) -> ParseMemory:
    return ParseMemory(f"the file needs more than {limits.parse_memory_mb} MB to read")


def _run(op: str, data: bytes, limits: Limits, progress: Progress | None = None) -> dict:
    # A bare environment: the child needs no secrets, and a parser bug must not reach them.
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(_ROOT),
        "LC_ALL": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        # glibc reserves 64 MB of address space per thread arena; the OCR engine's threads
        # would spend the memory cap on reservations rather than pages.
        "MALLOC_ARENA_MAX": "2",
    }
    steps_read, steps_write = os.pipe()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "workers.documents.sandbox", op, json.dumps(asdict(limits)),
             str(steps_write)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=_ROOT,
            pass_fds=(steps_write,),
        )
    except BaseException:
        os.close(steps_read)
        raise
    finally:
        os.close(steps_write)
    answer: dict = {}
    talk = threading.Thread(target=_communicate, args=(proc, data, answer), daemon=True)
    talk.start()
    try:
        step, deadline = _follow_steps(steps_read, limits, progress,
                                       lambda: proc.send_signal(signal.SIGUSR1))
        talk.join(max(deadline - time.monotonic(), 0))  # the child exits after its last step
        if talk.is_alive():
            raise _too_slow(limits, step)
    except BaseException:  # past a deadline, or the job was cancelled between two pages
        proc.kill()
        raise
    finally:
        os.close(steps_read)
        talk.join()
    out, err = answer["out"], answer["err"]
    if proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        raise _too_slow(limits, step)
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


def _communicate(proc: subprocess.Popen, data: bytes, answer: dict) -> None:
    """Feed the upload and collect the output (a thread: the caller's thread follows the
    steps meanwhile). Ends when the child exits or is killed past its deadline."""
    answer["out"], answer["err"] = proc.communicate(data)


def _follow_steps(fd: int, limits: Limits, progress: Progress | None,
                  time_up: Callable[[], None]) -> tuple[tuple[int, int] | None, float]:
    """Read the child's steps until it closes the pipe (it exits). Past the deadline of an
    OCR page, ``time_up()`` tells the child to leave the page, once; ParseTimeout past the
    next deadline (or any other). Returns the last step (done, total) seen, None if none
    came, and the deadline then in force."""
    page_allowance = 2 * limits.ocr_page_seconds + _STARTUP_SECONDS
    deadline = time.monotonic() + 2 * limits.parse_seconds + _STARTUP_SECONDS
    step = None
    told = False
    pending = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            if told or not step or step[0] >= step[1]:
                raise _too_slow(limits, step)
            with contextlib.suppress(OSError):
                time_up()
            told, deadline = True, time.monotonic() + page_allowance
            continue
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            return step, deadline
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            parsed = _step(line, limits)
            if parsed is None:
                continue
            new, step, told = parsed != step, parsed, False
            deadline = time.monotonic() + page_allowance
            if progress and new:  # a step repeated gives more time, and is said once
                progress(*step, step_message(*step))


def _step(line: bytes, limits: Limits) -> tuple[int, int] | None:
    """A step line from the child, ``[done, total]``; anything else is ignored (the child
    has read hostile bytes: it sends two bounded numbers and nothing more)."""
    try:
        done, total = json.loads(line)
    except (ValueError, TypeError):
        return None
    if (isinstance(done, int) and isinstance(total, int)
            and 0 <= done <= total <= limits.max_pages):
        return done, total
    return None


def _document(raw: dict) -> ExtractedDocument:
    return ExtractedDocument(
        kind=raw["kind"],
        text=raw["text"],
        page_map=[(int(s), int(n)) for s, n in raw["page_map"]],
        title=raw["title"],
        headings=[Heading(int(lv), str(t), int(s)) for lv, t, s in raw["headings"]],
        synthetic_pages=bool(raw["synthetic_pages"]),
        ocr_pages=[int(n) for n in raw["ocr_pages"]],
        unreadable_pages=[int(n) for n in raw["unreadable_pages"]],
        slow_pages=[int(n) for n in raw["slow_pages"]],
    )


def _encode(doc: ExtractedDocument) -> dict:
    return {
        "kind": doc.kind,
        "text": doc.text,
        "page_map": doc.page_map,
        "title": doc.title,
        "headings": [(h.level, h.text, h.start) for h in doc.headings],
        "synthetic_pages": doc.synthetic_pages,
        "ocr_pages": doc.ocr_pages,
        "unreadable_pages": doc.unreadable_pages,
        "slow_pages": doc.slow_pages,
    }


def _address_space() -> int:
    """Bytes of address space this process maps now (Linux); 0 where unknown."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _cpu_used() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _limit_self(limits: Limits) -> None:
    """Cap CPU and memory from here on; what the interpreter and modules took is not counted.
    The hard limits leave room for the OCR allowances that ``_Steps`` grants page by page."""
    cpu = math.ceil(_cpu_used() + limits.parse_seconds)
    most = math.ceil(cpu + (limits.max_ocr_pages + 1) * limits.ocr_page_seconds)
    # Past the soft limit the kernel sends SIGXCPU (fatal); past the hard one, SIGKILL.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, most))
    baseline = _address_space()
    if baseline:
        cap = baseline + limits.parse_memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap + limits.ocr_memory_mb * 2**20))


@contextlib.contextmanager
def _page_guard(limits: Limits) -> Iterator[None]:
    """While one OCR page is read: SIGXCPU (past the page's CPU allowance) and SIGUSR1 (the
    parent's deadline) raise PageTimeout, which ends that page only. Outside a page SIGXCPU
    ends the child as before and SIGUSR1 is ignored. Python runs the handler between two
    bytecodes, so a native call in progress finishes first: the parent's kill covers one
    that never does."""
    from .extract.ocr import PageTimeout

    def time_up(signum: int, frame: object) -> None:
        # Past the soft limit the kernel repeats SIGXCPU every CPU second: a fresh allowance
        # for what follows (the next step sets its own).
        _allow_cpu(limits.ocr_page_seconds)
        raise PageTimeout

    before = {sig: signal.signal(sig, time_up) for sig in (signal.SIGXCPU, signal.SIGUSR1)}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def _allow_cpu(seconds: float) -> None:
    """Let this process use ``seconds`` more CPU time (up to its hard limit)."""
    _, most = resource.getrlimit(resource.RLIMIT_CPU)
    allowed = math.ceil(_cpu_used() + seconds)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CPU, (min(allowed, most), most))


class _Steps:
    """The child's progress callback: each OCR page is a step with a fresh CPU allowance
    (the OCR engine's memory is allowed from the first step on), reported to the parent."""

    def __init__(self, fd: int | None, limits: Limits) -> None:
        self.out = os.fdopen(fd, "w", buffering=1) if fd is not None else None
        self.limits = limits

    def __call__(self, done: int, total: int, message: str = "") -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
        _allow_cpu(self.limits.ocr_page_seconds)
        if self.out:
            with contextlib.suppress(OSError):
                self.out.write(json.dumps([done, total]) + "\n")


def _child(op: str, limits: Limits, data: bytes, steps: _Steps) -> dict:
    # Only the child loads the parsers (pypdf, python-docx, trafilatura): the parent stays
    # light and never runs their code on hostile bytes.
    from .extract import extract_document, ocr
    from .sniff import sniff

    _limit_self(limits)
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # the parent's nudge, between two pages
    ocr.page_guard = functools.partial(_page_guard, limits)
    try:
        if op == "sniff":
            return {"kind": sniff(data, limits)}
        return {"document": _encode(extract_document(data, limits, steps))}
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
    steps = _Steps(int(argv[3]) if len(argv) > 3 else None, limits)
    data = sys.stdin.buffer.read()
    answer = _child(op, limits, data, steps)
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
