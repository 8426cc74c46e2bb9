"""Coverage-guided fuzzing of sniffing and every extractor: `python -m bench fuzz [--seconds 30]`.

Each target runs in its own process under atheris (libFuzzer for Python; `pip install -e
.[dev]` installs it): the engine's modules are instrumented, the corpus starts from small
valid files of the format, and libFuzzer mutates them for ``--seconds``. A target calls the
reader directly (not through sniffing), so every extractor sees every mutation. A
``DocumentError`` is the expected answer to a bad file; any other exception is a crash, an
input slower than ``--input-timeout`` a hang; either leaves its input under
var/bench/fuzz/artifacts/ to become a test case. Writes fuzz.md, fuzz.json and fuzz.png.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from bench.plotting import pyplot

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ["sniff", "pdf", "docx", "epub", "html", "markdown", "text"]


def seeds(target: str) -> list[bytes]:
    """Small valid files the fuzzer starts from."""
    # Not at the top: atheris instruments only engine modules first imported in child().
    from tests.documents_engine.builders import make_docx, make_epub
    from workers.documents.synth import make_text_pdf

    html = b"<!DOCTYPE html><html><head><title>T</title></head><body><h1>Head</h1>" \
           b"<p>Some <b>bold</b> text.</p><ul><li>one</li></ul><table><tr><td>c</td></tr>" \
           b"</table><script>x()</script></body></html>"
    markdown = b"# Title\n\nText with **bold** and a [link](http://x.y).\n\n```py\n# code\n" \
               b"```\n\n## Part ##\n\n- item\n> quote\n"
    text = "Plain text. Second sentence!\n\nGrüße, 契約書。 Done".encode()
    by_kind = {
        "pdf": [make_text_pdf(["First page text.", "Second page."], title="T")],
        "docx": [make_docx([(1, "Heading"), (0, "Body text.")], title="T",
                           table=[["a", "b"], ["c", "d"]])],
        "epub": [make_epub(["<h1>One</h1><p>Chapter text.</p>", "<p>Two</p>"])],
        "html": [html, b"<!-- c --><html><p>x</p>"],
        "markdown": [markdown],
        "text": [text, "UTF-16 text".encode("utf-16"), b"caf\xe9 cp1252"],
    }
    if target == "sniff":
        return [s for kind in TARGETS[1:] for s in by_kind[kind]]
    return by_kind[target]


def child(target: str, libfuzzer_args: list[str]) -> None:
    """Run inside the fuzzing process: instrument the engine, then fuzz one reader."""
    import atheris

    with atheris.instrument_imports(include=["workers"]):
        from workers.documents.errors import DocumentError
        from workers.documents.extract import extractor_for
        from workers.documents.limits import Limits
        from workers.documents.sniff import sniff

    limits = Limits(max_bytes=1 << 20)
    reader = None if target == "sniff" else extractor_for(target)

    def one_input(data: bytes) -> None:
        # A DocumentError is the expected answer to a bad file; anything else is a crash.
        with contextlib.suppress(DocumentError):
            sniff(data, limits) if reader is None else reader(data, limits)

    atheris.Setup([sys.argv[0], *libfuzzer_args], one_input)
    atheris.Fuzz()


def run_target(target: str, seconds: int, input_timeout: int, out: Path) -> dict:
    corpus, seed_dir = out / "corpus" / target, out / "seeds" / target
    artifacts = out / "artifacts" / target
    for d in (corpus, seed_dir, artifacts):
        d.mkdir(parents=True, exist_ok=True)
    for i, data in enumerate(seeds(target)):
        (seed_dir / f"seed{i}").write_bytes(data)
    before = set(artifacts.iterdir())
    args = [f"-max_total_time={seconds}", f"-timeout={input_timeout}", "-rss_limit_mb=2048",
            "-max_len=200000", "-print_final_stats=1", f"-artifact_prefix={artifacts}/",
            str(corpus), str(seed_dir)]
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "bench.fuzz", "--child", target, *args],
                          cwd=ROOT, capture_output=True, text=True,
                          timeout=seconds + 10 * input_timeout + 120)
    log = proc.stdout + proc.stderr
    (out / f"{target}.log").write_text(log[-200_000:])
    found = sorted(set(artifacts.iterdir()) - before)
    execs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", log)
    cov = re.findall(r"\bcov: (\d+)", log)
    ft = re.findall(r"\bft: (\d+)", log)
    return {
        "target": target,
        "seconds": round(time.perf_counter() - started, 1),
        "executions": int(execs[-1]) if execs else 0,
        "edges": int(cov[-1]) if cov else 0,
        "features": int(ft[-1]) if ft else 0,
        "corpus": len(list(corpus.iterdir())),
        "crashes": sum(p.name.startswith(("crash-", "oom-")) for p in found),
        "hangs": sum(p.name.startswith(("timeout-", "slow-unit-")) for p in found),
        "artifacts": [str(p.relative_to(out)) for p in found],
        "exit": proc.returncode,
    }


def report(results: list[dict], seconds: int, input_timeout: int, out: Path) -> str:
    from bench.machine import describe_machine, machine_line

    lines = [
        f"Fuzzing with atheris, {seconds} s per target, an input slower than {input_timeout} s "
        "counts as a hang.", "", machine_line(describe_machine("none")), "",
        "| target | executions | exec/s | edges (cov) | features | corpus | crashes | hangs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['target']} | {r['executions']:,} | {r['executions'] / max(r['seconds'], 1):,.0f}"
            f" | {r['edges']:,} | {r['features']:,} | {r['corpus']} | {r['crashes']} "
            f"| {r['hangs']} |")
    found = [a for r in results for a in r["artifacts"]]
    if found:
        lines += ["", "Inputs found (under var/bench/fuzz/):", *(f"- {a}" for a in found)]
    return "\n".join(lines) + "\n"


def plot(results: list[dict], path: Path) -> None:
    plt = pyplot()

    names = [r["target"] for r in results]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.bar(names, [r["executions"] for r in results], color="#4c72b0")
    ax1.set_title("executions")
    ax1.set_yscale("log")
    ax2.bar(names, [r["edges"] for r in results], color="#55a868")
    ax2.set_title("coverage (edges)")
    bad = [r["target"] for r in results if r["crashes"] or r["hangs"]]
    fig.suptitle("atheris over sniffing and the extractors" +
                 (f" — findings in: {', '.join(bad)}" if bad else " — 0 crashes, 0 hangs"))
    for ax in (ax1, ax2):
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        sys.path.insert(0, str(ROOT))
        child(sys.argv[2], sys.argv[3:])
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "var" / "bench"))
    parser.add_argument("--seconds", type=int, default=30, help="fuzzing time per target")
    parser.add_argument("--input-timeout", type=int, default=10,
                        help="seconds one input may take before it counts as a hang")
    parser.add_argument("--targets", default=",".join(TARGETS))
    args = parser.parse_args()
    try:
        import atheris  # noqa: F401
    except ImportError:
        sys.exit("atheris is missing: pip install -e '.[dev]' (or pip install atheris)")
    out = Path(args.out) / "fuzz"
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for target in args.targets.split(","):
        print(f"fuzzing {target} for {args.seconds} s", flush=True)
        results.append(run_target(target, args.seconds, args.input_timeout, out))
        print(json.dumps({k: v for k, v in results[-1].items() if k != "artifacts"}), flush=True)
    (out / "fuzz.json").write_text(json.dumps(results, indent=1))
    table = report(results, args.seconds, args.input_timeout, out)
    (out / "fuzz.md").write_text(table)
    plot(results, out / "fuzz.png")
    print(table)


if __name__ == "__main__":
    main()
