"""Fixtures of the LLM layer's tests: the backends under the contract, loaded once a session.

The embedded backend always runs. The vLLM run needs a server: set VLLM_BASE_URL (as
``scripts/vllm/test_vllm.sh`` does) and select it with ``-m vllm``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"  # nothing in these tests may reach a hub
os.environ["TRANSFORMERS_OFFLINE"] = "1"

from tests.llm.llm_fakes import ScriptedServer, SilentServer  # noqa: E402
from workers.llm.base import LLMBackend  # noqa: E402
from workers.llm.embedded import EmbeddedBackend  # noqa: E402
from workers.llm.model_store import ensure_model  # noqa: E402
from workers.llm.openai_compat import OpenAICompatBackend  # noqa: E402
from workers.llm.vllm_backend import VLLMBackend  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
VLLM_SKIP = "VLLM_BASE_URL is not set: run `make test-vllm` (scripts/vllm/test_vllm.sh)"


def _models_dir() -> Path:
    configured = os.environ.get("LLM_MODELS_DIR")
    return Path(configured) if configured else REPO_ROOT / "var" / "models"


@pytest.fixture(scope="session")
def model_folder() -> Path:
    """The converted embedded model (converted on the first run, ~40 s, then cached)."""
    return ensure_model(_models_dir())


@pytest.fixture(scope="session")
def reference_tokenizer(model_folder: Path):
    """The model's own tokenizer, loaded independently of any backend."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model_folder))


@pytest.fixture(scope="session")
def embedded(model_folder: Path) -> EmbeddedBackend:
    # Lone rows padded: the contract compares generate_batch with single calls, and on a
    # bf16 CPU one row rounds unlike two (workers/llm/embedded_batch.py).
    return EmbeddedBackend(model_folder.parent, pad_lone_rows=True)


@pytest.fixture(scope="session")
def vllm_url() -> str:
    url = os.environ.get("VLLM_BASE_URL")
    if not url:
        pytest.skip(VLLM_SKIP)
    return url


@pytest.fixture(scope="session")
def vllm(vllm_url: str) -> Iterator[VLLMBackend]:
    backend = VLLMBackend(vllm_url, concurrency=4, timeout=60, max_attempts=2)
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def openai_generic(vllm_url: str, model_folder: Path) -> Iterator[OpenAICompatBackend]:
    """The generic OpenAI-compatible path against the same server, counting tokens with
    a local copy of the tokenizer and without vLLM's extras."""
    backend = OpenAICompatBackend(
        vllm_url, concurrency=4, timeout=60, max_attempts=2, tokenizer=str(model_folder)
    )
    yield backend
    backend.close()


@pytest.fixture(
    scope="session",
    params=[
        "embedded",
        pytest.param("vllm", marks=pytest.mark.vllm),
        pytest.param("openai", marks=pytest.mark.vllm),
    ],
)
def backend(request: pytest.FixtureRequest) -> LLMBackend:
    """Each backend under the same contract."""
    names = {"embedded": "embedded", "vllm": "vllm", "openai": "openai_generic"}
    return request.getfixturevalue(names[request.param])


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.stop()


@pytest.fixture
def scripted_server() -> Iterator[type[ScriptedServer]]:
    """Factory: ``scripted_server(routes)``; every server made is stopped afterwards."""
    made: list[ScriptedServer] = []

    def make(routes):  # type: ignore[no-untyped-def]
        server = ScriptedServer(routes)
        made.append(server)
        return server

    yield make  # type: ignore[misc]
    for server in made:
        server.stop()
