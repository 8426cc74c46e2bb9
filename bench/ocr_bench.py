"""OCR speed and accuracy: `python -m bench ocr [--out DIR] [--chars 1200] [--dpi 100,150]`.

Generates scanned PDFs from known text (Pillow draws each page at 200 dpi, as a scanner
would give it, in several fonts and sizes; no text layer), reads them the way ingest does
(``extract_document``: PDFium renders each page at the OCR resolution, RapidOCR reads it)
and compares the recognised text with the text drawn.

Reports per font × size × render resolution: pages per minute (OCR engine warm; the first
page's engine load is timed apart) and character accuracy, 1 − CER, where CER is the
Levenshtein distance between the drawn and the recognised text (whitespace collapsed) over
the drawn length; also the accuracy with all spaces removed (the recogniser sometimes joins
two words). Writes results.json, results.md and ocr_bench.png into OUT/ocr.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np

from bench.machine import describe_machine, machine_lines
from bench.plotting import pyplot
from workers.documents import extract_document
from workers.documents.extract import ocr
from workers.documents.scans import scanned_pdf
from workers.documents.synth import filler_text

ROOT = Path(__file__).resolve().parent.parent
SCAN_DPI = 200


def fonts() -> dict[str, str | None]:
    """Fonts on this machine: Pillow's own, DejaVu (Debian's fonts-dejavu or matplotlib's
    copy) and STIX (a Times-like serif, with matplotlib)."""
    import matplotlib

    found: dict[str, str | None] = {"Aileron (Pillow)": None}
    mpl = Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf"
    for name, file in [("DejaVu Sans", "DejaVuSans.ttf"), ("DejaVu Serif", "DejaVuSerif.ttf"),
                       ("DejaVu Sans Mono", "DejaVuSansMono.ttf"),
                       ("STIX (Times-like)", "STIXGeneral.ttf")]:
        for folder in (Path("/usr/share/fonts/truetype/dejavu"), mpl):
            if (folder / file).exists():
                found[name] = str(folder / file)
                break
    return found


def levenshtein(a: str, b: str) -> int:
    """Edit distance, one numpy row at a time (insertions by a running minimum)."""
    if not a or not b:
        return max(len(a), len(b))
    bs = np.frombuffer(b.encode("utf-32-le"), dtype=np.uint32)
    steps = np.arange(len(b) + 1)
    row = steps.copy()
    for i, code in enumerate(np.frombuffer(a.encode("utf-32-le"), dtype=np.uint32), start=1):
        best = np.empty_like(row)
        best[0] = i
        best[1:] = np.minimum(row[1:] + 1, row[:-1] + (bs != code))
        row = np.minimum.accumulate(best - steps) + steps
    return int(row[-1])


def accuracy(truth: str, read: str) -> tuple[float, float]:
    """(1 − CER with whitespace collapsed, 1 − CER with spaces removed), floored at 0."""
    t, r = " ".join(truth.split()), " ".join(read.split())
    plain = max(0.0, 1 - levenshtein(t, r) / max(len(t), 1))
    t2, r2 = t.replace(" ", ""), r.replace(" ", "")
    return plain, max(0.0, 1 - levenshtein(t2, r2) / max(len(t2), 1))


def run(args) -> dict:
    rng = random.Random(0)
    texts = [filler_text(args.chars, rng) for _ in range(args.pages)]
    t = time.perf_counter()
    ocr.engine()
    load_seconds = time.perf_counter() - t
    rows = []
    for dpi, unclip in [(d, u) for d in args.dpi for u in args.unclip]:
        ocr.RENDER_DPI = dpi  # the resolution ingest renders pages at (swept here)
        ocr.UNCLIP_RATIO = unclip  # how much each detected box grows (swept here)
        for font_name, path in fonts().items():
            for pt in args.sizes:
                pdf = scanned_pdf(texts, dpi=SCAN_DPI, font_path=path, pt=pt)
                start = time.perf_counter()
                doc = extract_document(pdf)
                seconds = time.perf_counter() - start
                scores = [accuracy(text, doc.page_text(n))
                          for n, text in enumerate(texts, start=1)]
                row = {"font": font_name, "pt": pt, "dpi": dpi, "unclip": unclip,
                       "pages": len(texts),
                       "seconds": round(seconds, 2),
                       "pages_per_min": round(60 * len(texts) / seconds, 2),
                       "accuracy": round(float(np.mean([s[0] for s in scores])), 4),
                       "accuracy_no_spaces": round(float(np.mean([s[1] for s in scores])), 4)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    total_pages = sum(r["pages"] for r in rows)
    total_seconds = sum(r["seconds"] for r in rows)
    return {"machine": describe_machine(), "chars_per_page": args.chars,
            "scan_dpi": SCAN_DPI, "engine_load_seconds": round(load_seconds, 2),
            "pages_per_min": round(60 * total_pages / total_seconds, 2), "rows": rows}


def report(results: dict, out: Path) -> None:
    lines = ["# OCR benchmark", "", *machine_lines(results), "",
             f"Scans drawn at {results['scan_dpi']} dpi from known text "
             f"(~{results['chars_per_page']:,} characters a page); OCR engine load "
             f"{results['engine_load_seconds']} s (once per ingest). Overall "
             f"**{results['pages_per_min']} pages/min**.", "",
             "| font | size (pt) | render dpi | box growth | pages | pages/min "
             "| char. accuracy | accuracy, spaces ignored |", "|---|---|---|---|---|---|---|---|"]
    for r in results["rows"]:
        lines.append(f"| {r['font']} | {r['pt']} | {r['dpi']} | {r.get('unclip', '')} | "
                     f"{r['pages']} | "
                     f"{r['pages_per_min']} | {r['accuracy']:.1%} | "
                     f"{r['accuracy_no_spaces']:.1%} |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    plt = pyplot()
    rows = results["rows"]
    settings = sorted({(r["dpi"], r.get("unclip")) for r in rows})
    sizes = sorted({r["pt"] for r in rows})
    fig, axes = plt.subplots(1, len(settings), figsize=(6 * len(settings), 4.5), squeeze=False)
    for ax, (dpi, unclip) in zip(axes[0], settings, strict=True):
        here = [r for r in rows if r["dpi"] == dpi and r.get("unclip") == unclip]
        names = list(dict.fromkeys(r["font"] for r in here))
        width = 0.8 / len(sizes)
        for k, pt in enumerate(sizes):
            values = [next((r["accuracy"] * 100 for r in here if r["font"] == n
                            and r["pt"] == pt), 0) for n in names]
            ax.bar(np.arange(len(names)) + k * width, values, width, label=f"{pt} pt")
        speed = np.mean([r["pages_per_min"] for r in here])
        ax.set_xticks(np.arange(len(names)) + width * (len(sizes) - 1) / 2, names,
                      rotation=20, ha="right", fontsize=8)
        ax.set_ylim(0, 100)
        ax.set_ylabel("character accuracy (%)")
        ax.set_title(f"{dpi} dpi, boxes grown {unclip}: {speed:.1f} pages/min", fontsize=10)
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "ocr_bench.png", dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "var" / "bench"))
    parser.add_argument("--pages", type=int, default=1, help="pages per font × size")
    parser.add_argument("--chars", type=int, default=1_200, help="characters per page")
    parser.add_argument("--sizes", default="8,10,12", help="font sizes in points")
    parser.add_argument("--dpi", default=str(ocr.RENDER_DPI),
                        help="render resolutions to compare (default: what ingest uses)")
    parser.add_argument("--unclip", default=str(ocr.UNCLIP_RATIO),
                        help="box growth ratios to compare (default: what ingest uses)")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite results.md and the plot from results.json")
    args = parser.parse_args()
    args.sizes = [float(s) if "." in s else int(s) for s in args.sizes.split(",")]
    args.dpi = [int(d) for d in args.dpi.split(",")]
    args.unclip = [float(u) for u in args.unclip.split(",")]
    out = Path(args.out) / "ocr"
    out.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        results = json.loads((out / "results.json").read_text())
    else:
        results = run(args)
        (out / "results.json").write_text(json.dumps(results, indent=2))
    report(results, out)
    print(f"results in {out}")


if __name__ == "__main__":
    main()
