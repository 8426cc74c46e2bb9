"""The "compress" job kind (LLM work: queue "llm")."""

from __future__ import annotations

from apps.compress import services
from apps.jobs.kinds import register


@register(services.KIND, "Compress text", queue="llm")
def run_compress(job, progress) -> dict:
    return services.run(job, progress)
