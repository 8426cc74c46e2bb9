"""The engine's configuration: one object, filled by the caller, read by every engine part.

``EngineConfig`` holds the embedder (model and LongEmbed extension strategy) and the LLM
backend settings. The app builds it from its settings in one place and installs it in
every process (``install``); the index, the QA pre-filter, the evidence scoring of XL3M
and CoA, grounding and SCOPE then all take the same embedder (``get_embedder()`` with no
argument), and ``get_backend()`` the same LLM settings. Without an installed config (the
benchmarks, a script) it comes from the environment, the same variable names the app uses.

A leaf module: the engine packages import it, it imports none of them, so the arrows point
one way (``workers.llm.config`` re-exports ``LLMSettings`` from here).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

# The LongEmbed strategy the index and the pre-filter use for texts past the model's
# window; the benchmark's winner on the packaged model (docs/documents.md).
DEFAULT_LONGEMBED_STRATEGY = "pcw"


def _int(env: Mapping[str, str], key: str, default: int | None) -> int | None:
    value = env.get(key, "").strip()
    return int(value) if value else default


@dataclass(frozen=True)
class EmbedderSettings:
    """``model``: a sentence-transformers folder (None: the packaged all-MiniLM-L6-v2);
    ``strategy``: LongEmbed extension for texts longer than the window
    (``workers.documents.longembed.STRATEGIES``); ``chunk_tokens``: index chunk size
    (0: the model's window, so no extension is needed at ingest)."""

    model: str | None = None
    strategy: str = DEFAULT_LONGEMBED_STRATEGY
    chunk_tokens: int = 0
    device: str = "cpu"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EmbedderSettings:
        env = os.environ if env is None else env
        return cls(
            model=env.get("EMBEDDING_MODEL") or None,
            strategy=(env.get("EMBEDDING_STRATEGY") or DEFAULT_LONGEMBED_STRATEGY).strip(),
            chunk_tokens=_int(env, "EMBEDDING_CHUNK_TOKENS", 0) or 0,
        )


DEFAULT_BATCH_SIZE = 8  # 8 rows decode in little more than one row's time on a CPU


def embedded_batch_size(env: Mapping[str, str] | None = None) -> int:
    """Rows the embedded backend decodes together (``LLM_BATCH_SIZE``, at least 1)."""
    value = (os.environ if env is None else env).get("LLM_BATCH_SIZE", "").strip()
    return max(1, int(value)) if value else DEFAULT_BATCH_SIZE


@dataclass(frozen=True)
class LLMSettings:
    """The LLM backend (``workers.llm.config`` documents each LLM_* variable)."""

    backend: str = "embedded"
    base_url: str | None = None
    model: str | None = None
    api_key: str | None = None
    context_window: int | None = None
    concurrency: int = 8
    timeout: float = 120.0
    max_attempts: int = 3
    models_dir: str | None = None
    tokenizer: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LLMSettings:
        env = os.environ if env is None else env
        return cls(
            backend=(env.get("LLM_BACKEND") or "embedded").strip().lower(),
            base_url=env.get("LLM_BASE_URL") or None,
            model=env.get("LLM_MODEL") or None,
            api_key=env.get("LLM_API_KEY") or None,
            context_window=_int(env, "LLM_CONTEXT_WINDOW", None),
            concurrency=_int(env, "LLM_CONCURRENCY", 8) or 8,
            timeout=float(env.get("LLM_TIMEOUT") or 120.0),
            max_attempts=_int(env, "LLM_MAX_ATTEMPTS", 3) or 3,
            models_dir=env.get("LLM_MODELS_DIR") or None,
            tokenizer=env.get("LLM_TOKENIZER") or None,
        )


@dataclass(frozen=True)
class EngineConfig:
    embedder: EmbedderSettings = field(default_factory=EmbedderSettings)
    llm: LLMSettings = field(default_factory=LLMSettings)
    # Where model calls are recorded for the speed estimates (a Redis URL; None: nowhere).
    rates_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EngineConfig:
        env = os.environ if env is None else env
        return cls(EmbedderSettings.from_env(env), LLMSettings.from_env(env),
                   rates_url=env.get("LLM_RATES_URL") or None)


ConfigSource = Callable[[], "EngineConfig"]
_source: ConfigSource | None = None
_lock = threading.Lock()


def install(config: EngineConfig | ConfigSource | None) -> ConfigSource | None:
    """Make ``config`` the process's configuration: a fixed one, or a function the engine
    calls on each use (the app's: it reads its settings, so a changed setting counts at
    once); None: back to the environment. Cheap to call: a dataclass is built per use."""
    global _source
    with _lock:
        _source = (lambda: config) if isinstance(config, EngineConfig) else config


def current() -> EngineConfig:
    """The installed configuration, else one read from the environment now."""
    source = _source
    return source() if source is not None else EngineConfig.from_env()
