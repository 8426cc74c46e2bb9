"""In-process backend: SmolLM2-135M-Instruct on the CPU through transformers.

The default backend and the one the tests run. One model per process, loaded lazily
on first use (from the bf16 safetensors folder that ``model_store`` converts once,
computing in bf16 only where the CPU has it natively: ``compute_dtype``).
Generation goes through one batch decoder per model (``embedded_batch``): concurrent
requests are decoded together, up to ``LLM_BATCH_SIZE`` rows a step, each request's tokens
streamed to its own caller; prompt log-probabilities interleave with the decode steps.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from workers.config import embedded_batch_size

from .base import (
    Capabilities,
    ChatResult,
    ContinuationLogprobs,
    Health,
    LLMBackend,
    PromptLike,
    StreamEvent,
    Usage,
    as_messages,
    check_fits,
    check_sampling,
    collect,
    continuation_start,
)
from .embedded_batch import Decoder, Handle, Request
from .errors import BadResponse, CapabilityMissing
from .model_store import (
    EMBEDDED_MODEL_NAME,
    ensure_model,
    is_converted,
    model_dir,
    offline,
    packaged_gguf_path,
)

log = logging.getLogger(__name__)

EMBEDDED_CONTEXT_WINDOW = 8192  # SmolLM2's max_position_embeddings; read from config when there

_LOADED: dict[Path, tuple[Any, Any]] = {}  # folder -> (model, tokenizer): one per process
_LOAD_LOCK = threading.Lock()
_GENERATE_LOCK = threading.Lock()  # one forward pass at a time: the model is shared
_DECODERS: dict[tuple[Path, int, bool], Decoder] = {}  # (folder, batch size, pad) -> decoder


def torch_threads(requested: int | None = None) -> int:
    """Intra-op threads for the model: LLM_TORCH_THREADS, else half the usable CPUs.

    Half, because this process shares the machine (ingest worker, web, Postgres): with as
    many threads as cores, OpenMP threads spin-wait on each other whenever another
    process holds a core, and decoding collapsed from ~10.7 to ~1.5 tok/s on 2 busy cores
    (measured; see docs/llm.md).
    """
    if requested:
        return requested
    env = os.environ.get("LLM_TORCH_THREADS")
    if env:
        return int(env)
    return max(1, len(os.sched_getaffinity(0)) // 2)  # CPUs this process may use


def side_threads(requested: int | None = None) -> int:
    """Intra-op threads for torch work in any other thread of a process that decodes with
    this model (prompt scoring, the sentence embedder): the CPUs the decoder's threads
    leave, at least one. libgomp stops spinning between parallel regions once the threads
    of all its teams outnumber the CPUs, and then every region waits to be woken: one
    2-thread embedder call or prompt scoring in the main thread beside the 2-thread decoder
    took decoding from 27 to 14.7 tokens/s for the rest of the process (2 cores; with one
    thread there, 27.4). Idle team threads stay counted, so this holds from the first call."""
    cpus = len(os.sched_getaffinity(0))
    return max(1, cpus - torch_threads(requested))


def use_side_threads() -> None:
    """Set the calling thread's torch threads to ``side_threads()``."""
    _apply_threads(side_threads())


def _apply_threads(n: int) -> None:
    # OpenMP's thread count is per calling thread: set it in every thread that runs the
    # model (stream threads, Celery pool threads), not only once at load.
    import torch

    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


DTYPES = ("float32", "bfloat16")


def compute_dtype(requested: str | None = None) -> Any:
    """The torch dtype the model computes in: ``requested`` or LLM_TORCH_DTYPE (float32 |
    bfloat16), else bfloat16 where the CPU does bf16 natively (AVX512-BF16 / AMX, as oneDNN
    reports it) and float32 everywhere else. The weights are stored in bf16 either way;
    widening them is exact. Why: on an AVX2-only EPYC a 1024x1024 bf16 matmul ran at 0.9
    GFLOPS against 72 in float32, and scoring a 1k-token segment took 34 s instead of 1-2 s.
    """
    import torch

    name = (requested or os.environ.get("LLM_TORCH_DTYPE") or "").strip().lower()
    if name:
        if name not in DTYPES:
            raise ValueError(f"LLM_TORCH_DTYPE must be one of {', '.join(DTYPES)}, not {name!r}")
        return getattr(torch, name)
    return torch.bfloat16 if native_bf16() else torch.float32


def native_bf16() -> bool:
    """Does this CPU compute bf16 natively? (False when it cannot be told.)"""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # an older or unusual build: assume emulated bf16
        return False


def load_model(folder: Path, threads: int | None = None) -> tuple[Any, Any]:
    """(model, tokenizer) for ``folder``, loaded once per process."""
    with _LOAD_LOCK:
        if folder in _LOADED:
            return _LOADED[folder]
        offline()
        from transformers import AutoModelForCausalLM, AutoTokenizer

        _apply_threads(torch_threads(threads))
        dtype = compute_dtype()
        log.info("loading %s in %s", folder.name, dtype)
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype)
        model.eval()
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        _LOADED[folder] = (model, tokenizer)
        return model, tokenizer


_TOKENIZERS: dict[Path, Any] = {}


def load_tokenizer(folder: Path) -> Any:
    """The tokenizer alone (milliseconds, a few MB), for counting without the weights:
    an ingest worker counts a document's tokens without loading the model."""
    with _LOAD_LOCK:
        if folder in _LOADED:
            return _LOADED[folder][1]
        if folder not in _TOKENIZERS:
            offline()
            from transformers import AutoTokenizer

            _TOKENIZERS[folder] = AutoTokenizer.from_pretrained(str(folder))
        return _TOKENIZERS[folder]


class _StopTrimmer:
    """Withholds streamed text that could be the start of a stop string; cuts at a match.

    The stop string itself is never emitted (OpenAI's convention).
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.pending = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        if self.stopped:
            return ""
        self.pending += text
        cut = min((i for s in self.stops if (i := self.pending.find(s)) >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            out, self.pending = self.pending[:cut], ""
            return out
        hold = 0
        for stop in self.stops:
            for n in range(min(len(stop) - 1, len(self.pending)), 0, -1):
                if self.pending.endswith(stop[:n]):
                    hold = max(hold, n)
                    break
        out = self.pending[: len(self.pending) - hold]
        self.pending = self.pending[len(out) :]
        return out

    def flush(self) -> str:
        out, self.pending = ("" if self.stopped else self.pending), ""
        return out


def _stops(sampling: Mapping[str, Any]) -> list[str]:
    stop = sampling.get("stop") or []
    return [stop] if isinstance(stop, str) else list(stop)


class EmbeddedBackend(LLMBackend):
    name = "embedded"

    def __init__(
        self,
        models_dir: str | os.PathLike[str] | None = None,
        *,
        context_window: int | None = None,
        threads: int | None = None,
        batch_size: int | None = None,
        pad_lone_rows: bool = False,
    ) -> None:
        self.model = EMBEDDED_MODEL_NAME
        self.models_dir = models_dir
        self.folder = model_dir(models_dir)
        self._window_override = context_window
        self.threads = torch_threads(threads)
        # Rows decoded together; also the concurrency callers should aim for (map stages).
        self.batch_size = batch_size or embedded_batch_size()
        self.concurrency = self.batch_size
        # True: a lone request's greedy text equals its text in company (``_RowPad``), at
        # a cost; tests that compare batched with one-at-a-time texts ask for it.
        self.pad_lone_rows = pad_lone_rows
        self._load_error: str | None = None

    # -- model -------------------------------------------------------------------------

    def _loaded(self) -> tuple[Any, Any]:
        try:
            return load_model(ensure_model(self.models_dir), self.threads)
        except Exception as exc:
            self._load_error = f"{type(exc).__name__}: {exc}"
            raise

    @property
    def is_loaded(self) -> bool:
        return self.folder in _LOADED

    @property
    def context_window(self) -> int:
        if self._window_override:
            return self._window_override
        config = self.folder / "config.json"
        if config.is_file():  # no need to load the weights for this
            return int(json.loads(config.read_text())["max_position_embeddings"])
        return EMBEDDED_CONTEXT_WINDOW

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            streaming=True,
            prompt_logprobs=True,
            top_logprobs=True,
            guided_json=False,
            tokenize=True,
            concurrent_batch=False,
            repetition_penalty=True,
        )

    # -- helpers -------------------------------------------------------------------------

    def _tokenizer(self) -> Any:
        return load_tokenizer(ensure_model(self.models_dir))

    def _chat_ids(self, messages: PromptLike) -> list[int]:
        tokenizer = self._tokenizer()
        ids = tokenizer.apply_chat_template(
            as_messages(messages), add_generation_prompt=True, tokenize=True, return_dict=True
        )
        return list(ids["input_ids"])

    def _decoder(self) -> Decoder:
        model, tokenizer = self._loaded()
        key = (self.folder, self.batch_size, self.pad_lone_rows)
        with _LOAD_LOCK:
            if key not in _DECODERS:
                _DECODERS[key] = Decoder(
                    model,
                    tokenizer.eos_token_id,
                    self.batch_size,
                    _GENERATE_LOCK,
                    prepare=lambda: _apply_threads(self.threads),
                    pad_lone_rows=self.pad_lone_rows,
                )
            return _DECODERS[key]

    def _submit(self, messages: PromptLike, sampling: dict[str, Any]) -> tuple[Handle, int]:
        """Queue one request with the batch decoder: (its handle, prompt tokens)."""
        sampling = check_sampling(sampling)
        if sampling.get("json_schema") is not None:
            raise CapabilityMissing(
                "the embedded backend cannot constrain output to a JSON schema; "
                "check capabilities.guided_json and parse the text instead"
            )
        ids = self._chat_ids(messages)
        check_fits(len(ids), sampling["max_tokens"], self.context_window)
        request = Request(
            ids,
            sampling["max_tokens"],
            temperature=float(sampling.get("temperature") or 0.0),
            top_p=float(sampling.get("top_p") or 1.0),
            repetition_penalty=sampling.get("repetition_penalty"),
            seed=sampling.get("seed"),
        )
        return self._decoder().submit(request), len(ids)

    def _events(
        self, handle: Handle, prompt_tokens: int, stops: Sequence[str]
    ) -> Iterator[StreamEvent]:
        """The request's text deltas (decoded incrementally, cut at a stop string), then
        the usage; an abandoned consumer frees the row at the next step."""
        tokenizer = self._tokenizer()
        trimmer = _StopTrimmer(stops)
        pending: list[int] = []  # tokens since the last line break, decoded together
        shown = 0  # characters of their text already handed out
        try:
            for token in handle.tokens():
                pending.append(token)
                text = tokenizer.decode(pending, skip_special_tokens=True)
                if text.endswith("\n"):  # as transformers' TextStreamer: start afresh
                    piece, pending, shown = text[shown:], [], 0
                else:
                    # Whole words only: decoding more tokens can still change the last one
                    # (a character split across tokens, spaces cleaned up before "'m").
                    piece = text[shown : text.rfind(" ") + 1]
                    shown += len(piece)
                out = trimmer.feed(piece)
                if out:
                    yield StreamEvent(delta=out)
                if trimmer.stopped:
                    break
            else:
                tail = trimmer.feed(tokenizer.decode(pending, skip_special_tokens=True)[shown:])
                tail += trimmer.flush()
                if tail:
                    yield StreamEvent(delta=tail)
        except queue.Empty:
            raise BadResponse("generation stalled: no token within the timeout") from None
        except (BadResponse, CapabilityMissing):
            raise
        except Exception as exc:
            raise BadResponse(f"generation failed: {exc!r}") from exc
        finally:
            handle.cancel()
        generated = handle.generated
        ended = trimmer.stopped or (bool(generated) and generated[-1] == tokenizer.eos_token_id)
        yield StreamEvent(
            usage=Usage(prompt_tokens, len(generated)), finish_reason="stop" if ended else "length"
        )

    # -- LLMBackend ----------------------------------------------------------------------

    def chat(self, messages: PromptLike, **sampling: Any) -> ChatResult:
        handle, prompt_tokens = self._submit(messages, sampling)
        events = self._events(handle, prompt_tokens, _stops(sampling))
        return collect(events, Usage(prompt_tokens, 0))

    def stream(self, messages: PromptLike, **sampling: Any) -> Iterator[StreamEvent]:
        handle, prompt_tokens = self._submit(messages, sampling)
        return self._events(handle, prompt_tokens, _stops(sampling))

    def generate_batch(self, prompts: Sequence[PromptLike], **sampling: Any) -> list[ChatResult]:
        # Every prompt is queued at once, so the decoder runs them in shared batches.
        with ThreadPoolExecutor(max_workers=max(1, min(len(prompts), self.batch_size))) as pool:
            return list(pool.map(lambda p: self.chat(p, **sampling), prompts))

    def count_tokens(self, text_or_messages: PromptLike) -> int:
        if isinstance(text_or_messages, str):
            return len(self._tokenizer()(text_or_messages)["input_ids"])
        return len(self._chat_ids(text_or_messages))

    def continuation_logprobs(
        self, prompt: str, continuation: str, *, top_k: int = 5
    ) -> ContinuationLogprobs:
        import torch

        if not prompt:
            raise ValueError("prompt must not be empty: the first token has no logprob")
        model, tokenizer = self._loaded()
        prompt_ids = tokenizer(prompt)["input_ids"]
        full_ids = tokenizer(prompt + continuation)["input_ids"]
        start = continuation_start(prompt_ids, full_ids)
        check_fits(len(full_ids), 0, self.context_window)
        n = len(full_ids) - start
        with _GENERATE_LOCK, torch.inference_mode():
            _apply_threads(side_threads(self.threads))
            # Only the logits that predict the continuation: the whole [L, vocab] matrix of
            # an 8k prompt would be 1.6 GB.
            logits = (
                model(input_ids=torch.tensor([full_ids]), logits_to_keep=n + 1)
                .logits[0, :-1]
                .float()
            )
        logp = torch.log_softmax(logits, dim=-1)
        targets = torch.tensor(full_ids[start:])
        chosen = logp.gather(1, targets[:, None])[:, 0]
        entropy = -(logp.exp() * logp).sum(dim=-1)
        return ContinuationLogprobs(
            tokens=[tokenizer.decode([i]) for i in full_ids[start:]],  # text, as vLLM gives
            token_ids=list(full_ids[start:]),
            logprobs=chosen.tolist(),
            entropies=entropy.tolist(),
            entropy_exact=True,
            usage=Usage(len(full_ids), 0),
            start=start,
        )

    def health(self) -> Health:
        detail = {"loaded": self.is_loaded, "model_dir": str(self.folder)}
        if self._load_error:
            return Health(False, self._load_error, detail)
        if self.is_loaded or is_converted(self.folder):
            return Health(True, detail=detail)
        try:  # not converted yet: healthy if the packaged GGUF is there to convert
            detail["gguf"] = str(packaged_gguf_path())
        except FileNotFoundError as exc:
            return Health(False, str(exc), detail)
        return Health(True, detail=detail)
