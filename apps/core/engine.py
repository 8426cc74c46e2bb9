"""The engine's configuration from the app's settings: the one place the app fills it.

``CoreConfig.ready`` installs ``engine_config`` in every process (web, Celery workers,
management commands, tests); the engine calls it on each use, so an overridden setting
counts at once. The engine itself never reads Django settings.
"""

from __future__ import annotations

import os

from django.conf import settings

from workers.config import EmbedderSettings, EngineConfig, LLMSettings


def engine_config() -> EngineConfig:
    return EngineConfig(
        embedder=EmbedderSettings(
            model=settings.EMBEDDING_MODEL or None,
            strategy=settings.EMBEDDING_STRATEGY,
            chunk_tokens=settings.EMBEDDING_CHUNK_TOKENS,
        ),
        # The LLM_* variables are not Django settings: read here, for the engine.
        llm=LLMSettings.from_env(os.environ),
        rates_url=settings.REDIS_URL,  # the model's measured speed, shared by all processes
    )
