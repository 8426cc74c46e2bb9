"""LongEmbed context extension: embed texts longer than the model's trained positions.

Strategies, selected by name (``STRATEGIES``):

- ``truncate``: the baseline; the first ``trained_positions`` tokens (512 for MiniLM).
- ``pcw``: parallel context windows; embed consecutive windows of the trained length and
  average them (then L2-normalise). Linear cost; any model.
- ``pi``: position interpolation for absolute-position models; an input of n > 512 tokens
  gets positions p·(512−1)/(n−1) on the trained table (linear interpolation between rows),
  so every position is one the model has seen. Attention is quadratic, so inputs are capped
  at ``max_tokens`` (4,096 by default) and cut beyond.
- ``ntk``: NTK-aware RoPE scaling for rotary models: rope_theta × s^(d/(d−2)) with s the
  length over the trained length (rounded up to a power of two). Absolute-position models
  (MiniLM) get ``StrategyNotApplicable``.

The default is the benchmark's winner on this model (see docs/documents.md).
"""

from __future__ import annotations

import copy
import math
import threading
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from .embeddings import Embedder

DEFAULT_STRATEGY = "pcw"


class StrategyNotApplicable(ValueError):
    """The strategy does not fit this model's kind of position encoding."""


class LongEmbedStrategy(Protocol):
    name: str

    def embed(self, embedder: Embedder, texts: list[str]) -> np.ndarray: ...


def _content_length(embedder: Embedder) -> int:
    prefix, suffix = embedder.special_tokens
    return embedder.trained_positions - len(prefix) - len(suffix)


def _ids(embedder: Embedder, texts: list[str]) -> list[list[int]]:
    return [embedder.token_ids(t) for t in texts]


@dataclass(frozen=True)
class Truncate:
    name: str = "truncate"

    def embed(self, embedder: Embedder, texts: list[str]) -> np.ndarray:
        limit = _content_length(embedder)
        return embedder.embed_ids([ids[:limit] for ids in _ids(embedder, texts)])


@dataclass(frozen=True)
class ParallelContextWindows:
    name: str = "pcw"
    window: int | None = None  # content tokens per window; None = the trained length

    def embed(self, embedder: Embedder, texts: list[str]) -> np.ndarray:
        size = self.window or _content_length(embedder)
        windows: list[list[int]] = []
        owners: list[int] = []
        weights: list[int] = []
        for owner, ids in enumerate(_ids(embedder, texts)):
            for start in range(0, max(len(ids), 1), size):
                windows.append(ids[start : start + size])
                owners.append(owner)
                weights.append(max(len(windows[-1]), 1))
        vectors = embedder.embed_ids(windows)
        # Length-weighted mean, so a short tail window does not weigh as much as a full one.
        out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float64)
        np.add.at(out, owners, vectors * np.asarray(weights, dtype=np.float64)[:, None])
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out.astype(np.float32)


def interpolate_positions(table: Any, length: int) -> Any:
    """Stretch an absolute position table of L rows to ``length`` rows by linear
    interpolation: row j is the table at fractional position j·(L−1)/(length−1)."""
    rows = table.shape[0]
    if length <= rows:
        return table[:length]
    x = torch.arange(length, dtype=torch.float32) * (rows - 1) / (length - 1)
    lo = x.floor().long().clamp(max=rows - 1)
    hi = (lo + 1).clamp(max=rows - 1)
    frac = (x - lo.float())[:, None]
    return table[lo] * (1 - frac) + table[hi] * frac


@dataclass(frozen=True)
class PositionInterpolation:
    name: str = "pi"
    max_tokens: int = 4096

    def embed(self, embedder: Embedder, texts: list[str]) -> np.ndarray:
        model = embedder.hf_model
        emb = getattr(model, "embeddings", None)
        if emb is None or not hasattr(emb, "position_embeddings"):
            raise StrategyNotApplicable(
                "pi needs a model with an absolute position-embedding table "
                "(BERT-style); use ntk for RoPE models or pcw for any model"
            )
        prefix, suffix = embedder.special_tokens
        limit = self.max_tokens - len(prefix) - len(suffix)
        trained = _content_length(embedder)
        table = emb.position_embeddings.weight.detach()
        start = embedder.position_offset
        table = table[start : start + embedder.trained_positions]
        all_ids = [ids[:limit] for ids in _ids(embedder, texts)]
        out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
        short = [i for i, ids in enumerate(all_ids) if len(ids) <= trained]
        if short:
            out[short] = embedder.embed_ids([all_ids[i] for i in short])
        for i, ids in enumerate(all_ids):
            if len(ids) > trained:
                # Each long input gets its own stretch factor, so it is embedded alone.
                length = len(ids) + len(prefix) + len(suffix)
                stretched = interpolate_positions(table, length)
                out[i] = embedder.embed_ids([ids], position_table=stretched)[0]
        return out


def rope_theta(config: Any) -> float | None:
    params = getattr(config, "rope_parameters", None)
    if isinstance(params, dict) and "rope_theta" in params:
        return float(params["rope_theta"])
    theta = getattr(config, "rope_theta", None)
    return float(theta) if theta is not None else None


def ntk_theta(theta: float, scale: float, head_dim: int) -> float:
    """NTK-aware base: stretches the low frequencies by ``scale``, keeps the high ones."""
    return theta * scale ** (head_dim / (head_dim - 2))


def _rotary_modules(model: Any) -> list[tuple[str, Any]]:
    return [
        (name, module)
        for name, module in model.named_modules()
        if type(module).__name__.endswith("RotaryEmbedding") and hasattr(module, "inv_freq")
    ]


@dataclass
class NTKScaling:
    name: str = "ntk"
    max_tokens: int = 32_768
    _cache: dict[tuple[int, int], Any] | None = None
    _lock: threading.Lock | None = None

    def __post_init__(self) -> None:
        self._cache = {}
        self._lock = threading.Lock()

    def scaled_model(self, embedder: Embedder, scale: int) -> Any:
        """A copy of the model sharing every weight, with rotary frequencies for ``scale``."""
        model = embedder.hf_model
        theta = rope_theta(model.config)
        rotary = _rotary_modules(model)
        if theta is None or not rotary:
            raise StrategyNotApplicable(
                f"ntk scales RoPE; this model ({model.config.model_type}) uses absolute "
                "position embeddings: use pi or pcw"
            )
        if scale <= 1:
            return model
        key = (id(model), scale)
        with self._lock:
            if key not in self._cache:
                # deepcopy with every parameter pre-seeded in the memo: the copy shares the
                # weights (no extra memory) and owns only its rotary buffers.
                memo = {id(p): p for p in model.parameters()}
                scaled = copy.deepcopy(model, memo)
                for _, module in _rotary_modules(scaled):
                    dim = module.inv_freq.shape[0] * 2
                    new_theta = ntk_theta(theta, scale, dim)
                    exponents = np.arange(0, dim, 2, dtype=np.float64) / dim
                    inv = torch.tensor(1.0 / new_theta**exponents, dtype=module.inv_freq.dtype)
                    module.inv_freq = inv
                    if hasattr(module, "original_inv_freq"):
                        module.original_inv_freq = inv.clone()
                self._cache[key] = scaled
            return self._cache[key]

    def embed(self, embedder: Embedder, texts: list[str]) -> np.ndarray:
        trained = _content_length(embedder)
        prefix, suffix = embedder.special_tokens
        limit = self.max_tokens - len(prefix) - len(suffix)
        self.scaled_model(embedder, 1)  # raises early for absolute-position models
        all_ids = [ids[:limit] for ids in _ids(embedder, texts)]
        out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
        groups: dict[int, list[int]] = {}
        for i, ids in enumerate(all_ids):
            ratio = len(ids) / trained
            scale = 1 if ratio <= 1 else 2 ** math.ceil(math.log2(ratio))
            groups.setdefault(scale, []).append(i)
        for scale, members in groups.items():
            model = self.scaled_model(embedder, scale)
            out[members] = embedder.embed_ids([all_ids[i] for i in members], model=model)
        return out


STRATEGIES: dict[str, LongEmbedStrategy] = {
    s.name: s for s in (Truncate(), ParallelContextWindows(), PositionInterpolation(), NTKScaling())
}


def get_strategy(name: str) -> LongEmbedStrategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ValueError(
            f"unknown LongEmbed strategy {name!r}; choose from {sorted(STRATEGIES)}"
        ) from None


def embed_long(
    embedder: Embedder,
    texts: list[str],
    strategy: str = DEFAULT_STRATEGY,
) -> np.ndarray:
    """L2-normalised embeddings of (possibly very long) texts with the named strategy."""
    return get_strategy(strategy).embed(embedder, texts)
