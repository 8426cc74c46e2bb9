"""The "compress" job kind (long LLM work: queue "batch")."""

from __future__ import annotations

from apps.compress import services
from apps.jobs.kinds import register


@register(services.KIND, "Compress text", queue="batch")
def run_compress(job, progress) -> dict:
    return services.run(job, progress)
