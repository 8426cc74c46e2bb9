"""Runners for the job kinds of this app."""

from __future__ import annotations

from django.conf import settings

from apps.jobs.kinds import register
from workers.llm import get_backend
from workers.textstats import word_stats


@register("word_stats", "Word statistics", queue="ingest")
def run_word_stats(job, progress) -> dict:
    return word_stats(job.params.get("text", ""), progress, step_delay=settings.DEMO_JOB_STEP_DELAY)


@register("llm_check", "Model check", queue="interactive")
def run_llm_check(job, progress) -> dict:
    """Send one short prompt through a worker to the configured model: proves the path
    web → broker → LLM worker → backend, and measures it."""
    import time

    progress(0, 1, "Asking the model")
    backend = get_backend()
    started = time.perf_counter()
    result = backend.chat(
        [{"role": "user", "content": job.params.get("prompt") or "Say hello in five words."}],
        max_tokens=int(job.params.get("max_tokens", 24)),
    )
    seconds = time.perf_counter() - started
    progress.add_tokens(result.usage.prompt_tokens, result.usage.completion_tokens)
    progress(1, 1, "Answered")
    return {
        "backend": backend.name, "model": backend.model, "answer": result.text,
        "seconds": round(seconds, 3), "prompt_tokens": result.usage.prompt_tokens,
        "completion_tokens": result.usage.completion_tokens,
    }
