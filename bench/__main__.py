"""`python -m bench [names…] [--out DIR]`: run the benchmarks (all by default).

Each benchmark is a module of this package with its own options; this runner calls each
with --out and whatever data path it takes (../shared/data when present)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHES = {
    "stack": ["bench.stack_bench"],
    "llm": ["bench.llm_bench"],
    "llm_batch": ["bench.llm_batch_bench"],
    "retrieval": ["bench.retrieval_bench"],
    "sentences": ["bench.sentence_index_bench"],
    "ingest": ["bench.ingest_bench"],
    "ocr": ["bench.ocr_bench"],
    "qa": ["bench.qa_bench"],
    "qa_quality": ["bench.qa_quality"],
    "qa_cost": ["bench.qa_cost"],
    "summary": ["bench.summary_bench"],
    "estimate": ["bench.estimate_bench"],
    "compress": ["bench.compress_bench"],
    "write": ["bench.write_bench"],
    "writing_quality": ["bench.writing_quality"],
    "report": ["bench.report_bench"],
    "api": ["bench.api_bench"],
    "web": ["bench.web_bench"],
    "fuzz": ["bench.fuzz"],
    "faults": ["bench.faults"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help=f"any of: {', '.join(BENCHES)}")
    parser.add_argument("--out", default=str(ROOT / "var" / "bench"))
    args, extra = parser.parse_known_args()
    unknown = set(args.names) - set(BENCHES)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    failed = []
    for name in args.names or list(BENCHES):
        module = BENCHES[name][0]
        if not (ROOT / (module.replace(".", "/") + ".py")).exists():
            print(f"== {name}: not present, skipped")
            continue
        print(f"== {name}")
        code = subprocess.call([sys.executable, "-m", module, "--out", args.out, *extra],
                               cwd=ROOT)
        if code:
            failed.append(name)
    print(f"results in {args.out}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
