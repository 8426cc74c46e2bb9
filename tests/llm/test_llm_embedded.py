"""What only the embedded backend does: the converted model folder, thread safety, a stream
abandoned half-way, exact entropies, stop-string trimming."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from workers.llm.embedded import EmbeddedBackend, _StopTrimmer
from workers.llm.model_store import is_converted, model_dir


def test_converted_folder_loads_anywhere(model_folder: Path) -> None:
    assert is_converted(model_folder)
    config = json.loads((model_folder / "config.json").read_text())
    # No GGUF leftovers (they would make every load re-dequantise), and keys that the
    # older transformers inside the vLLM venv reads.
    assert "quantization_config" not in config
    assert config["rope_theta"] == 100000.0 and config["max_position_embeddings"] == 8192
    tok = json.loads((model_folder / "tokenizer_config.json").read_text())
    assert tok["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert "<|im_start|>" in tok["chat_template"]
    for item in model_folder.iterdir():
        assert item.stat().st_mode & stat.S_IROTH, f"{item} is not world-readable"
    assert not list(model_folder.parent.glob(f".{model_folder.name}.*/"))  # no temp dirs


def test_models_dir_comes_from_the_environment(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LLM_MODELS_DIR", str(tmp_path))
    assert model_dir() == tmp_path / "smollm2-135m-instruct"
    assert not is_converted(model_dir())


def test_compute_dtype_follows_the_cpu_unless_told(monkeypatch) -> None:
    import torch

    from workers.llm import embedded

    monkeypatch.delenv("LLM_TORCH_DTYPE", raising=False)
    monkeypatch.setattr(embedded, "native_bf16", lambda: False)
    assert embedded.compute_dtype() == torch.float32  # emulated bf16 is ~80x slower
    monkeypatch.setattr(embedded, "native_bf16", lambda: True)
    assert embedded.compute_dtype() == torch.bfloat16
    monkeypatch.setenv("LLM_TORCH_DTYPE", "Float32")
    assert embedded.compute_dtype() == torch.float32
    monkeypatch.setenv("LLM_TORCH_DTYPE", "float16")
    with pytest.raises(ValueError, match="LLM_TORCH_DTYPE must be one of float32, bfloat16"):
        embedded.compute_dtype()


def test_the_loaded_model_computes_in_the_chosen_dtype(embedded: EmbeddedBackend) -> None:
    from workers.llm.embedded import _LOADED, compute_dtype

    embedded.count_tokens("load")  # the tokenizer alone does not load the weights
    embedded.chat([{"role": "user", "content": "Hi"}], max_tokens=1)
    model, _ = next(iter(_LOADED.values()))
    assert next(model.parameters()).dtype == compute_dtype()


def test_window_and_capabilities(embedded: EmbeddedBackend) -> None:
    assert embedded.context_window == 8192
    caps = embedded.capabilities
    assert caps.prompt_logprobs and caps.top_logprobs and caps.tokenize
    assert not caps.guided_json


def test_concurrent_callers_get_the_answers_of_sequential_ones(embedded: EmbeddedBackend) -> None:
    prompts = ["Name a colour.", "Name an animal.", "Name a city."]
    expected = [embedded.chat(p, max_tokens=6).text for p in prompts]
    got: dict[int, str] = {}

    def call(i: int) -> None:
        got[i] = embedded.chat(prompts[i], max_tokens=6).text

    threads = [threading.Thread(target=call, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert [got[i] for i in range(3)] == expected


def test_abandoned_stream_frees_the_model(embedded: EmbeddedBackend) -> None:
    stream = embedded.stream("Write a very long essay about the history of Rome.", max_tokens=600)
    first = next(stream)
    assert first.delta
    stream.close()  # the caller walks away after one delta
    started = time.monotonic()
    embedded.chat("Say hi.", max_tokens=4)
    # 600 tokens at ~13 tok/s would hold the lock for ~45 s.
    assert time.monotonic() - started < 15


def test_entropy_is_exact_and_tracks_uncertainty(embedded: EmbeddedBackend) -> None:
    counting = embedded.continuation_logprobs("One, two, three, four,", " five")
    free = embedded.continuation_logprobs("My favourite word is", " banana")
    assert counting.entropy_exact and counting.entropies and free.entropies
    # After a counting sequence the next token is nearly certain; after "my favourite
    # word is" almost anything goes.
    assert counting.entropies[0] < free.entropies[0]
    assert counting.logprobs[0] > free.logprobs[0]


def test_empty_prompt_is_refused(embedded: EmbeddedBackend) -> None:
    with pytest.raises(ValueError, match="prompt must not be empty"):
        embedded.continuation_logprobs("", "text")


def test_sampling_with_a_seed_is_reproducible(embedded: EmbeddedBackend) -> None:
    a = embedded.chat("Invent a name.", max_tokens=6, temperature=1.0, seed=7)
    b = embedded.chat("Invent a name.", max_tokens=6, temperature=1.0, seed=7)
    assert a.text == b.text


@pytest.mark.parametrize(
    ("pieces", "stops", "expected"),
    [
        (["Hello wor", "ld. Bye"], ["."], "Hello world"),
        (["abc", "EN", "D tail"], ["END"], "abc"),
        (["abc", "EN", "X tail"], ["END"], "abcENX tail"),  # held back, then released
        (["no stop here"], [], "no stop here"),
    ],
)
def test_stop_trimmer(pieces: list[str], stops: list[str], expected: str) -> None:
    trimmer = _StopTrimmer(stops)
    out = "".join(trimmer.feed(p) for p in pieces) + trimmer.flush()
    assert out == expected


def test_engine_layer_imports_no_django() -> None:
    code = (
        "import sys, workers.llm, workers.llm.embedded, workers.llm.vllm_backend; "
        "sys.exit(1 if any(m.startswith('django') for m in sys.modules) else 0)"
    )
    root = Path(__file__).resolve().parents[2]
    assert subprocess.run([sys.executable, "-c", code], cwd=root).returncode == 0


def test_conversion_runs_once_under_the_lock(monkeypatch, tmp_path: Path) -> None:
    """Two starts at once: one converts, the other waits and reuses the result. The real
    conversion (~40 s) is replaced by a slow stand-in that writes the same files."""
    from workers.llm import model_store

    calls = []

    def slow_convert(gguf: Path, target: Path) -> None:
        calls.append(target)
        time.sleep(0.5)
        target.mkdir(parents=True)
        for name in ("config.json", "model.safetensors", "tokenizer_config.json"):
            (target / name).write_text("{}")

    monkeypatch.setattr(model_store, "_convert", slow_convert)
    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(model_store.ensure_model(tmp_path)))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(calls) == 1
    assert results == [tmp_path / "smollm2-135m-instruct"] * 2


def test_torch_work_beside_the_decoder_leaves_it_its_cores(monkeypatch):
    """An embedder call in another thread uses the CPUs the decoder's threads leave: more
    threads there made libgomp stop spinning and halved decoding (27 → 14.7 tokens/s)."""
    import os
    import threading

    import torch

    from workers.documents.embeddings import get_embedder
    from workers.llm.embedded import side_threads

    cpus = len(os.sched_getaffinity(0))
    assert side_threads(cpus) == 1 and side_threads(1) == max(1, cpus - 1)

    def threads_after_embedding() -> int:
        found: list[int] = []

        def run() -> None:  # a fresh thread: torch's per-thread count starts at its default
            get_embedder().embed(["The keeper lit the lamp at dusk."])
            found.append(torch.get_num_threads())

        worker = threading.Thread(target=run)
        worker.start()
        worker.join()
        return found[0]

    monkeypatch.setenv("LLM_TORCH_THREADS", str(cpus))
    assert threads_after_embedding() == 1
    monkeypatch.setenv("LLM_TORCH_THREADS", "1")
    assert threads_after_embedding() == max(1, cpus - 1)
