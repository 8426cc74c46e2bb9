"""Runners for the job kinds of this app."""

from __future__ import annotations

from django.conf import settings

from apps.jobs.kinds import register
from workers.textstats import word_stats


@register("word_stats", "Word statistics", queue="ingest")
def run_word_stats(job, progress) -> dict:
    return word_stats(job.params.get("text", ""), progress, step_delay=settings.DEMO_JOB_STEP_DELAY)
