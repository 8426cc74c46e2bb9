"""End-to-end ingest through the app: `python -m bench.ingest_bench --out DIR [--pages 500]`.

Generates a PDF of N pages, uploads it into a temporary team with the documents service and
runs the ingest job in this process (extract → chunk → embed → insert into pgvector and the
full-text index), then deletes the team. Reports time per stage and peak memory."""

from __future__ import annotations

import argparse
import os
import random
import resource
import time
from pathlib import Path

from workers.documents import extract_document, sniff
from workers.documents.sandbox import extract_sandboxed, sniff_sandboxed
from workers.documents.synth import filler_text, make_text_pdf

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "var" / "bench"))
    parser.add_argument("--pages", type=int, default=500)
    parser.add_argument("--parse-rounds", type=int, default=5,
                        help="rounds of in-process vs sandboxed sniff + extract of the same "
                             "PDF (0: skip the comparison)")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apps.settings")
    import django
    from django.conf import settings

    from apps import stack

    stack.start_for(settings)  # the embedded Postgres and Redis where the settings use them
    django.setup()
    # Django and the apps: importable only now that the settings are set up.
    from django.core.files.uploadedfile import SimpleUploadedFile

    from apps.accounts.models import User
    from apps.documents import services
    from apps.jobs import services as jobs
    from apps.jobs.models import Job, Status
    from apps.teams.services import create_team

    rng = random.Random(0)
    pages = [filler_text(2_400, rng) for _ in range(args.pages)]
    pdf = make_text_pdf(pages, title="Bench report")
    user, _ = User.objects.get_or_create(email="bench@example.invalid")
    team = create_team(f"bench-{time.time_ns()}", user)
    marks: list[tuple[str, float]] = []

    def progress(current, total, message=""):
        marks.append((message, time.perf_counter()))

    try:
        started = time.perf_counter()
        document = services.upload(team, user, SimpleUploadedFile("bench.pdf", pdf)).document
        uploaded = time.perf_counter()
        job = document.job
        claimed = jobs.claim(job.pk, job.celery_task_id)
        result = services.ingest(document, progress)
        Job.objects.filter(pk=claimed.pk).update(status=Status.SUCCEEDED)
        done = time.perf_counter()
        extracted = next(t for m, t in marks if m.startswith("Extracted"))
        embedding = next(t for m, t in marks if m.startswith("Embedding"))
        embedded = [t for m, t in marks if m.startswith("Embedded")][-1]
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        rows = [
            ("PDF", f"{args.pages} pages, {len(pdf) / 2**20:.1f} MB"),
            ("document", f"{result['words']:,} words, {result['tokens']:,} LLM tokens, "
                         f"{result['chunks']:,} chunks"),
            ("upload (sniff, hash, store, enqueue)", f"{uploaded - started:.1f} s"),
            ("extract", f"{extracted - uploaded:.1f} s"),
            ("chunk", f"{embedding - extracted:.1f} s"),
            ("embed", f"{embedded - embedding:.1f} s "
                      f"({result['chunks'] / max(embedded - embedding, 1e-9):.1f} chunks/s)"),
            ("count tokens + insert into pgvector / full text", f"{done - embedded:.1f} s"),
            ("total", f"{done - started:.1f} s"),
            ("peak RSS", f"{rss:.0f} MB"),
        ]
        if args.parse_rounds:
            rows += compare_parsing(pdf, services.limits(), args.parse_rounds)
        table = "| stage | value |\n|---|---|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "ingest.md").write_text(table + "\n")
        print(table)
    finally:
        for document in team.documents.all():
            services.delete(document)
        team.delete()


def compare_parsing(data: bytes, limits, rounds: int) -> list[tuple[str, str]]:
    """Sniff + extract in this process (before the sandbox) and in the sandbox's child
    process (now), alternating on the same bytes; medians and their ratio."""
    from statistics import median


    ways = {"in-process": (sniff, extract_document),
            "sandboxed": (sniff_sandboxed, extract_sandboxed)}
    times: dict[str, dict[str, list[float]]] = {w: {"sniff": [], "extract": []} for w in ways}
    for _ in range(rounds):
        for way, (sniff_fn, extract_fn) in ways.items():
            for step, fn in (("sniff", sniff_fn), ("extract", extract_fn)):
                start = time.perf_counter()
                fn(data, limits)
                times[way][step].append(time.perf_counter() - start)
    med = {w: {k: median(v) for k, v in steps.items()} for w, steps in times.items()}
    rows = []
    for step in ("sniff", "extract"):
        before, after = med["in-process"][step], med["sandboxed"][step]
        rows.append((f"{step}: in-process (before) / sandboxed (now), median of {rounds}",
                     f"{before:.2f} s / {after:.2f} s (+{after - before:.2f} s)"))
    return rows


if __name__ == "__main__":
    main()
