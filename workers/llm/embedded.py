"""In-process backend: SmolLM2-135M-Instruct on the CPU through transformers.

The default backend and the one the tests run. One model per process, loaded lazily
on first use (from the bf16 safetensors folder that ``model_store`` converts once,
computing in bf16 only where the CPU has it natively: ``compute_dtype``);
a lock serialises generation, so a batch runs its items one after another (on a
couple of CPU threads, batching would gain nothing anyway).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

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
    continuation_start,
)
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
_GENERATE_LOCK = threading.Lock()  # process-wide: the model is shared by all instances


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


def _trim_at_stop(text: str, stops: Sequence[str] | None) -> tuple[str, bool]:
    cuts = [i for s in (stops or []) if s and (i := text.find(s)) >= 0]
    return (text[: min(cuts)], True) if cuts else (text, False)


class EmbeddedBackend(LLMBackend):
    name = "embedded"

    def __init__(
        self,
        models_dir: str | os.PathLike[str] | None = None,
        *,
        context_window: int | None = None,
        threads: int | None = None,
    ) -> None:
        self.model = EMBEDDED_MODEL_NAME
        self.models_dir = models_dir
        self.folder = model_dir(models_dir)
        self._window_override = context_window
        self.threads = torch_threads(threads)
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

    def _generate_kwargs(self, ids: list[int], sampling: dict[str, Any]) -> dict[str, Any]:
        import torch

        model, tokenizer = self._loaded()
        if sampling.get("json_schema") is not None:
            raise CapabilityMissing(
                "the embedded backend cannot constrain output to a JSON schema; "
                "check capabilities.guided_json and parse the text instead"
            )
        temperature = float(sampling.get("temperature") or 0.0)
        kwargs: dict[str, Any] = {
            "input_ids": torch.tensor([ids]),
            "attention_mask": torch.ones(1, len(ids), dtype=torch.long),
            "max_new_tokens": sampling["max_tokens"],
            "pad_token_id": tokenizer.eos_token_id,
            "do_sample": temperature > 0,
        }
        if temperature > 0:
            kwargs["temperature"] = temperature
            kwargs["top_p"] = float(sampling.get("top_p") or 1.0)
            kwargs["top_k"] = 0  # transformers defaults to top_k=50; OpenAI semantics have none
        else:
            # Explicit values so the model's generation_config cannot turn sampling on.
            kwargs["temperature"] = None
            kwargs["top_p"] = None
            kwargs["top_k"] = None
        # transformers' RepetitionPenaltyLogitsProcessor: prompt and output tokens, as vLLM.
        kwargs["repetition_penalty"] = sampling.get("repetition_penalty")
        if sampling.get("stop"):
            kwargs["stop_strings"] = sampling["stop"]
            kwargs["tokenizer"] = tokenizer
        return kwargs

    def _seed(self, sampling: dict[str, Any]) -> None:
        if sampling.get("seed") is not None and (sampling.get("temperature") or 0) > 0:
            import torch

            torch.manual_seed(int(sampling["seed"]))

    # -- LLMBackend ----------------------------------------------------------------------

    def chat(self, messages: PromptLike, **sampling: Any) -> ChatResult:
        import torch

        sampling = check_sampling(sampling)
        ids = self._chat_ids(messages)
        check_fits(len(ids), sampling["max_tokens"], self.context_window)
        model, tokenizer = self._loaded()
        kwargs = self._generate_kwargs(ids, sampling)
        with _GENERATE_LOCK, torch.inference_mode():
            _apply_threads(self.threads)
            self._seed(sampling)
            output = model.generate(**kwargs)
        generated = output[0, len(ids) :].tolist()
        text, hit_stop = _trim_at_stop(
            tokenizer.decode(generated, skip_special_tokens=True), sampling.get("stop")
        )
        ended = hit_stop or (bool(generated) and generated[-1] == tokenizer.eos_token_id)
        return ChatResult(text, Usage(len(ids), len(generated)), "stop" if ended else "length")

    def stream(self, messages: PromptLike, **sampling: Any) -> Iterator[StreamEvent]:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        sampling = check_sampling(sampling)
        ids = self._chat_ids(messages)
        check_fits(len(ids), sampling["max_tokens"], self.context_window)
        model, tokenizer = self._loaded()
        kwargs = self._generate_kwargs(ids, sampling)
        cancel = threading.Event()

        class _Cancelled(StoppingCriteria):
            # Lets an abandoned stream free the model instead of generating to max_tokens.
            def __call__(self, input_ids: Any, scores: Any, **_: Any) -> Any:
                return torch.full((input_ids.shape[0],), cancel.is_set(), dtype=torch.bool)

        streamer = TextIteratorStreamer(
            tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600
        )
        result: dict[str, Any] = {}

        def run() -> None:
            try:
                with _GENERATE_LOCK, torch.inference_mode():
                    _apply_threads(self.threads)
                    self._seed(sampling)
                    result["output"] = model.generate(
                        **kwargs,
                        streamer=streamer,
                        stopping_criteria=StoppingCriteriaList([_Cancelled()]),
                    )
            except BaseException as exc:  # reported to the consumer below
                result["error"] = exc
                streamer.end()

        return self._stream_events(ids, sampling, tokenizer, streamer, run, cancel, result)

    def _stream_events(
        self,
        ids: list[int],
        sampling: dict[str, Any],
        tokenizer: Any,
        streamer: Any,
        run: Any,
        cancel: threading.Event,
        result: dict[str, Any],
    ) -> Iterator[StreamEvent]:
        thread = threading.Thread(target=run, name="llm-embedded-stream", daemon=True)
        thread.start()
        trimmer = _StopTrimmer(sampling.get("stop") or [])
        try:
            for piece in streamer:
                out = trimmer.feed(piece)
                if out:
                    yield StreamEvent(delta=out)
                if trimmer.stopped:
                    cancel.set()
            tail = trimmer.flush()
            if tail:
                yield StreamEvent(delta=tail)
        finally:
            cancel.set()
            thread.join()
        if "error" in result:
            raise BadResponse(f"generation failed: {result['error']!r}") from result["error"]
        generated = result["output"][0, len(ids) :].tolist()
        ended = trimmer.stopped or (bool(generated) and generated[-1] == tokenizer.eos_token_id)
        yield StreamEvent(
            usage=Usage(len(ids), len(generated)), finish_reason="stop" if ended else "length"
        )

    def generate_batch(self, prompts: Sequence[PromptLike], **sampling: Any) -> list[ChatResult]:
        # Sequential: one model, one lock; concurrency would only interleave the same cores.
        return [self.chat(prompt, **sampling) for prompt in prompts]

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
            _apply_threads(self.threads)
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
