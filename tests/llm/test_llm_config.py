"""Settings from the environment, the registry, the per-process backend, describe()."""

from __future__ import annotations

import pytest

from tests.llm.llm_fakes import free_port
from workers.llm import (
    LLMSettings,
    available_backends,
    create_backend,
    describe,
    get_backend,
    register_backend,
    reset_backend,
)
from workers.llm.embedded import EmbeddedBackend
from workers.llm.openai_compat import OpenAICompatBackend
from workers.llm.vllm_backend import VLLMBackend


@pytest.fixture(autouse=True)
def _fresh_backend():
    reset_backend()
    yield
    reset_backend()


def test_defaults_to_the_embedded_backend() -> None:
    settings = LLMSettings.from_env({})
    assert settings.backend == "embedded" and settings.concurrency == 8
    assert isinstance(create_backend(settings), EmbeddedBackend)


def test_settings_from_environment() -> None:
    settings = LLMSettings.from_env(
        {
            "LLM_BACKEND": "VLLM",
            "LLM_BASE_URL": "http://gpu:8000/v1",
            "LLM_MODEL": "m",
            "LLM_CONTEXT_WINDOW": "32768",
            "LLM_CONCURRENCY": "64",
            "LLM_TIMEOUT": "30",
            "LLM_MODELS_DIR": "/models",
        }
    )
    assert (settings.backend, settings.context_window, settings.concurrency) == ("vllm", 32768, 64)
    backend = create_backend(settings)
    assert isinstance(backend, VLLMBackend)
    assert backend.api_url == "http://gpu:8000/v1" and backend.root_url == "http://gpu:8000"
    assert backend.context_window == 32768  # the override needs no server
    backend.close()


def test_http_backends_need_a_url() -> None:
    with pytest.raises(ValueError, match="LLM_BASE_URL"):
        create_backend(LLMSettings(backend="openai"))


def test_unknown_backend_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="embedded"):
        create_backend(LLMSettings(backend="gpt-magic"))


def test_registry_accepts_new_backends() -> None:
    made = []

    def factory(settings: LLMSettings):
        backend = OpenAICompatBackend(f"http://127.0.0.1:{free_port()}", context_window=99)
        made.append(backend)
        return backend

    register_backend("custom-test", factory)
    assert "custom-test" in available_backends()
    assert create_backend(LLMSettings(backend="custom-test")).context_window == 99
    made[0].close()


def test_get_backend_is_cached_per_process(monkeypatch) -> None:
    monkeypatch.setenv("LLM_BACKEND", "openai")
    monkeypatch.setenv("LLM_BASE_URL", f"http://127.0.0.1:{free_port()}")
    first = get_backend()
    assert get_backend() is first
    reset_backend()
    assert get_backend() is not first


def test_describe_reports_an_unreachable_server_without_raising(monkeypatch) -> None:
    monkeypatch.setenv("LLM_BACKEND", "vllm")
    monkeypatch.setenv("LLM_BASE_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("LLM_MAX_ATTEMPTS", "1")
    info = describe()
    assert info["backend"] == "vllm" and info["healthy"] is False
    assert "BackendUnavailable" in info["error"]
    assert info["capabilities"]["prompt_logprobs"] is True


def test_describe_embedded_does_not_load_the_model(monkeypatch, model_folder) -> None:
    monkeypatch.setenv("LLM_MODELS_DIR", str(model_folder.parent))
    monkeypatch.delenv("LLM_BACKEND", raising=False)
    info = describe()
    assert info["healthy"] is True and info["context_window"] == 8192
    assert info["model"] == "smollm2-135m-instruct"
    assert set(info) >= {"backend", "model", "context_window", "capabilities", "healthy", "error"}


def test_forked_child_gets_its_own_backend(monkeypatch) -> None:
    import os

    monkeypatch.setenv("LLM_BACKEND", "openai")
    monkeypatch.setenv("LLM_BASE_URL", f"http://127.0.0.1:{free_port()}")
    parent = get_backend()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: must not reuse the parent's (thread-less) backend
        os.write(write, b"1" if get_backend() is not parent else b"0")
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
