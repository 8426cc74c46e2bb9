"""Where the time of a writing job goes: ``bench.writing_quality`` run unchanged, with the
embedded backend's requests and its decoder's prefills and decode steps timed and counted
by what asked for them (the plan, a section's first round, a continuation round, a fix, a
restatement, the raw decode).

    python -m bench.writing_profile OUT.json -- <bench.writing_quality arguments>

Writes OUT.json after every instruction: per row, per purpose, requests, prefill seconds
and tokens, decode seconds and steps, and the request's wall time. Concurrent requests (a
checklist decoded beside its section) share decode steps: a step of n rows counts 1/n to
each row's purpose.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback
from collections import Counter, defaultdict
from typing import Any

from workers.llm import embedded, embedded_batch

STATS: defaultdict[str, Counter] = defaultdict(Counter)
ASKING = threading.local()  # the purpose of the request the calling thread is sending
PURPOSE_OF: dict[int, str] = {}  # id(decoder request) -> purpose
PURPOSES = [("raw_decode", "raw_decode"), ("make_plan", "plan"), ("restate_sources", "restate"),
            ("enforce", "fix"), ("early_additions", "fix"), ("_addition", "fix")]


def purpose() -> str:
    """What the request being sent is for, from the call stack."""
    names = [frame.name for frame in traceback.extract_stack()]
    for name, label in PURPOSES:
        if name in names:
            return label
    frame = sys._getframe()
    while frame is not None and frame.f_code.co_name != "write_to_length":
        frame = frame.f_back
    if frame is None:
        return "other"
    first = frame.f_locals.get("rounds") == 0 and not frame.f_locals.get("empty_rounds")
    return "section round 1" if first else "continuation"


def _timed_request(name: str) -> None:
    original = getattr(embedded.EmbeddedBackend, name)

    def timed(self: Any, messages: Any, **sampling: Any) -> Any:
        label = ASKING.purpose = purpose()
        STATS[label]["requests"] += 1
        started = time.perf_counter()
        result = original(self, messages, **sampling)
        if name == "chat":
            STATS[label]["wall_s"] += time.perf_counter() - started
            return result

        def events() -> Any:
            try:
                yield from result
            finally:
                result.close()
                STATS[label]["wall_s"] += time.perf_counter() - started

        return events()

    setattr(embedded.EmbeddedBackend, name, timed)


def _timed_decoder() -> None:
    decoder = embedded_batch.Decoder
    submit, prefill, step = decoder.submit, decoder._prefill, decoder._step

    def tagged_submit(self: Any, request: Any, *args: Any) -> Any:
        PURPOSE_OF[id(request)] = getattr(ASKING, "purpose", "other")
        return submit(self, request, *args)

    def timed_prefill(self: Any, request: Any) -> Any:
        started = time.perf_counter()
        out = prefill(self, request)
        counts = STATS[PURPOSE_OF.get(id(request), "other")]
        counts["prefill_s"] += time.perf_counter() - started
        counts["prefill_tokens"] += len(request.ids)
        return out

    def timed_step(self: Any, rows: Any, *args: Any) -> Any:
        started = time.perf_counter()
        out = step(self, rows, *args)
        spent = time.perf_counter() - started
        for row in rows:
            counts = STATS[PURPOSE_OF.get(id(row.request), "other")]
            counts["decode_s"] += spent / len(rows)
            counts["decode_steps"] += 1 / len(rows)
        return out

    decoder.submit, decoder._prefill, decoder._step = tagged_submit, timed_prefill, timed_step


def main(argv: list[str]) -> int:
    out, args = argv[0], argv[2:] if argv[1:2] == ["--"] else argv[1:]
    _timed_request("stream")
    _timed_request("chat")
    _timed_decoder()
    import bench.writing_quality as quality

    rows: list[dict[str, Any]] = []
    run_one = quality.run_one

    def profiled(llm: Any, item: dict[str, Any], target: int) -> dict[str, Any]:
        before = {k: Counter(v) for k, v in STATS.items()}
        started = time.perf_counter()
        row = run_one(llm, item, target)
        spent = {k: {m: round(n - before.get(k, Counter())[m], 2) for m, n in v.items()}
                 for k, v in STATS.items() if k != "raw_decode"}
        rows.append({"kind": row["kind"], "target": target, "words": row["words"],
                     "seconds": round(time.perf_counter() - started, 1), "by_purpose": spent})
        with open(out, "w") as f:
            json.dump(rows, f, indent=1)
        return row

    quality.run_one = profiled
    return quality.main(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
