"""The engine's one configuration (``workers.config``): the embedder and the LLM backend come
from it, and a failing optional arm is logged and traced, not swallowed."""

from __future__ import annotations

import logging

import pytest

from workers.config import EmbedderSettings, EngineConfig, LLMSettings, current, install
from workers.documents.embeddings import default_model_path, get_embedder
from workers.llm import get_backend
from workers.qa.run import Run
from workers.qa.scoring import prefilter

TEXTS = [f"Sentence number {i} is about the harbour and its ships." for i in range(6)]


@pytest.fixture
def configured():
    """Installs a config for one test, then puts back what was installed before."""
    previous = install(None)
    yield install
    install(previous)


def test_get_embedder_follows_the_installed_model(configured, tmp_path):
    assert get_embedder().model_path == default_model_path()
    configured(EngineConfig(embedder=EmbedderSettings(model=str(tmp_path / "other"))))
    assert get_embedder().model_path == str(tmp_path / "other")
    assert get_embedder(default_model_path()).model_path == default_model_path()  # explicit wins


def test_the_backend_follows_the_installed_llm_settings(configured):
    window = 3000
    configured(EngineConfig(llm=LLMSettings(backend="openai", base_url="http://127.0.0.1:9/v1",
                                            model="m", context_window=window)))
    first = get_backend()
    assert first.name != "embedded" and first is get_backend()  # built once per config
    other = LLMSettings(backend="vllm", base_url="http://127.0.0.1:9/v1")
    configured(lambda: EngineConfig(llm=other))  # a source: read on each use
    assert get_backend() is not first and get_backend().name == "vllm"


def test_environment_is_the_fallback(monkeypatch):
    monkeypatch.setenv("EMBEDDING_MODEL", "/models/e5")
    monkeypatch.setenv("EMBEDDING_STRATEGY", "pi")
    monkeypatch.setenv("LLM_BACKEND", "vllm")
    config = current()
    assert (config.embedder.model, config.embedder.strategy, config.llm.backend) == \
        ("/models/e5", "pi", "vllm")


def test_a_failing_dense_arm_is_logged_and_traced_and_the_answer_goes_on(
        configured, tmp_path, caplog, llm):
    configured(EngineConfig(embedder=EmbedderSettings(model=str(tmp_path / "no-such-model"))))
    run = Run(llm)
    with caplog.at_level(logging.WARNING), run.step("prefilter") as step:
        kept, info = prefilter("Where are the ships?", TEXTS, top_n=2, dense=True)
    assert len(kept) == 2 and info["method"] == "bm25"  # the lexical arm alone
    assert "dense ranking" in step.notes["unavailable"]
    assert "no-such-model" in caplog.text and "Traceback" in caplog.text
