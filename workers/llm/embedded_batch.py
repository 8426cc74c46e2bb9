"""Batched decoding for the in-process model: concurrent requests share each decode step.

On a CPU, decoding one token reads every weight of the model once; decoding a batch of
rows reads them once for all rows, so a handful of concurrent prompts cost little more
than one. Prefill stays per request (it is compute-bound, and alone a prompt takes the
fused causal-attention path with no padding waste), then the request's KV cache joins the
running batch, left-padded to the batch's length (position ids count only real tokens).
The decode step's attention reads each row's own keys, padding cut off (``RAGGED``), as
two plain matrix products: the linear layers are row-independent, but bf16 attention over
a masked, padded key range rounds differently from the same attention alone (a logit moved
by 0.5, and greedy text changed, in a measurement), so without this a batched answer could
differ from the one-at-a-time answer; with it they are equal. Plain products, not sdpa:
torch's fused CPU kernel took ~24 ms for one query over 2,900 keys, the products ~0.4 ms
(30 layers: most of a long-context decode step). The cache has room to grow
(``_GrowingLayer``): a step writes one column instead of copying the whole cache as
transformers' ``DynamicLayer`` does (at 2,900 tokens the copies were half a step's time).
A request arriving while a batch decodes joins at the next step; a finished or cancelled
row leaves at once (continuous batching, bounded by ``batch_size``).

One ``Decoder`` per loaded model runs one daemon thread; callers get a ``Handle`` whose
queue receives their own token ids (so streaming stays per request).
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

RAGGED = "scriptorium_ragged"  # the attention implementation the decoder installs
ROW_PAD = "_scriptorium_row_pad"  # the model attribute holding its ``_RowPad``
COLLECT_SECONDS = 0.005  # from idle, wait this long for companions before the first step
_DONE = object()


@dataclass
class Request:
    ids: list[int]
    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    repetition_penalty: float | None = None
    seed: int | None = None
    out: queue.Queue = field(default_factory=queue.Queue)  # token ids, then _DONE or an error
    cancel: threading.Event = field(default_factory=threading.Event)


class Handle:
    """The caller's side of one request: its tokens as they come; ``cancel()`` frees the row."""

    def __init__(self, request: Request, timeout: float) -> None:
        self.request = request
        self.timeout = timeout
        self.generated: list[int] = []

    def tokens(self) -> Iterator[int]:
        while True:
            item = self.request.out.get(timeout=self.timeout)
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            self.generated.append(item)
            yield item

    def cancel(self) -> None:
        self.request.cancel.set()


@dataclass
class _Row:
    request: Request
    seen: Any  # prompt + generated ids (tensor), for the repetition penalty
    position: int  # the next token's position id (real tokens only)
    produced: int = 0
    generator: Any = None


def _ragged_attention(module, query, key, value, attention_mask, row_starts=None, **kwargs):  # type: ignore[no-untyped-def]
    """sdpa, except for a batched decode step: each row attends to its keys from its first
    real token on, with no mask, exactly as it would alone."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if row_starts is None or query.shape[2] != 1:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    import torch

    scaling = kwargs.get("scaling") or module.scaling
    rows = [
        _one_query_attention(
            query[i : i + 1], key[i : i + 1, :, s:], value[i : i + 1, :, s:], scaling
        )
        for i, s in enumerate(row_starts)
    ]
    return torch.cat(rows), None


def _one_query_attention(query, key, value, scaling):  # type: ignore[no-untyped-def]
    """One row's attention for one new token, grouped-query heads without repeating the
    keys: query [1, H, 1, D] against key/value [1, Hkv, L, D] (views of the cache) ->
    [1, 1, H, D]. Computed in float32 (widening bf16 is exact): the bf16 products on the
    cache's strided views took 0.36 ms a layer at 1,200 keys on one thread, float32 0.16 ms
    (40 keys: 74 against 25 µs) — a tenth of a decode step at that length — and the
    result is closer to float32 sdpa (max error 0.0004 against 0.0012)."""
    import torch

    _, heads, _, dim = query.shape
    grouped = query.reshape(1, key.shape[1], heads // key.shape[1], dim).float()
    scores = torch.matmul(grouped, key.float().transpose(-1, -2)) * scaling
    weights = torch.softmax(scores, dim=-1)
    out = torch.matmul(weights, value.float()).to(value.dtype)
    return out.reshape(1, heads, 1, dim).transpose(1, 2)


class _RowPad:
    """While ``active``, a linear layer given one row computes it as two equal rows.

    Matrix products on one row take the BLAS/oneDNN matrix-vector path, which rounds
    differently from the matrix path of two or more rows (bf16: "Say hello." gave "Hello!
    I'sure I'm sorry" alone, "Hello! I'm here to help with" in every batch of 2 to 8; float32
    differs in the last bits), so a lone request's greedy text can differ from its text in
    company. ``pad_lone_rows=True`` (the decoder's; the embedded backend's) removes that
    difference (the tests that compare batched with one-at-a-time texts use it); it is off
    by default because it costs: on a float32 AVX2 CPU a lone 2,898-token request decoded
    at 1.11 tok/s padded against 3.02 alone (medians, docs/qa.md).
    Only the linear layers get the second row: attention is per row anyway."""

    def __init__(self) -> None:
        self.active = False
        self._padded = False  # the running layer's input was doubled: halve its output

    def before(self, module, args):  # type: ignore[no-untyped-def]
        x = args[0]
        if not (self.active and x.shape[:-1].numel() == 1):
            return None
        import torch

        self._padded = True
        return (torch.cat([x, x]), *args[1:])

    def after(self, module, args, output):  # type: ignore[no-untyped-def]
        if not self._padded:
            return None
        self._padded = False
        return output[:1]


def install_ragged_attention(model: Any) -> _RowPad:
    """Register and select ``RAGGED`` (plain sdpa for every other call: prefill, scoring),
    and give every linear layer the ``_RowPad`` hooks (inactive outside a lone decode step)."""
    from torch import nn
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(RAGGED, _ragged_attention)
    AttentionMaskInterface.register(RAGGED, sdpa_mask)
    if getattr(model.config, "_attn_implementation", None) != RAGGED:
        model.set_attn_implementation(RAGGED)
    pad = getattr(model, ROW_PAD, None)
    if pad is None:
        pad = _RowPad()
        for module in model.modules():
            if isinstance(module, nn.Linear):
                module.register_forward_pre_hook(pad.before)
                module.register_forward_hook(pad.after)
        setattr(model, ROW_PAD, pad)
    return pad


class Decoder:
    """The decode loop of one model. ``lock`` is held for each forward pass, so other
    users of the model (prompt log-probabilities) interleave between steps."""

    def __init__(
        self,
        model: Any,
        eos_id: int,
        batch_size: int,
        lock: threading.Lock,
        prepare: Callable[[], None] = lambda: None,
        pad_lone_rows: bool = False,
    ) -> None:
        self.row_pad = install_ragged_attention(model)
        # A lone row decodes alone (one-row matrix products) unless this is set; see
        # ``_RowPad`` for what setting it buys (text independent of company) and costs.
        self.pad_lone_rows = pad_lone_rows
        self.model = model
        self.eos_id = eos_id
        self.batch_size = max(1, batch_size)
        self.lock = lock
        self.prepare = prepare  # per-thread setup (torch threads)
        self._pending: list[Request] = []
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._stopping = False
        self.peak_batch = 0  # the largest batch decoded together (tests and the bench)
        self.lone_steps = 0  # decode steps of one row, and of those the ones padded to two
        self.padded_steps = 0

    # -- callers ---------------------------------------------------------------------

    def submit(self, request: Request, timeout: float = 600.0) -> Handle:
        with self._wake:
            if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                # A thread does not survive fork (Celery's prefork pool): start our own.
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._loop, name="llm-embedded-decoder", daemon=True
                )
                self._thread.start()
                atexit.register(self._stop)
            self._pending.append(request)
            self._wake.notify()
        return Handle(request, timeout)

    # -- the loop ----------------------------------------------------------------------

    def _stop(self) -> None:
        """At interpreter exit: let the step in progress end, then stop the loop. (A process
        that exits while a cancelled row is still mid-step aborted: "terminate called
        without an active exception", exit status 134.)"""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)

    def _take(self, room: int, block: bool) -> list[Request]:
        with self._wake:
            if block:
                while not self._pending and not self._stopping:
                    self._wake.wait()
            taken, self._pending = self._pending[:room], self._pending[room:]
            return taken

    def _loop(self) -> None:
        import torch

        self.prepare()
        rows: list[_Row] = []
        cache: Any = None
        mask: Any = None
        nxt: Any = None
        while not self._stopping:
            arrivals: list[Request] = []
            try:
                if not rows:
                    first = self._take(1, block=True)
                    threading.Event().wait(COLLECT_SECONDS)  # let companions arrive
                    arrivals = first + self._take(self.batch_size - 1, block=False)
                else:
                    arrivals = self._take(self.batch_size - len(rows), block=False)
                with torch.inference_mode():
                    for request in arrivals:
                        if request.cancel.is_set():
                            request.out.put(_DONE)
                            continue
                        row, kv, token = self._prefill(request)
                        rows, cache, mask, nxt = _join(rows, cache, mask, nxt, row, kv, token)
                    self.peak_batch = max(self.peak_batch, len(rows))
                    keep = [i for i, row in enumerate(rows) if self._emit(row, int(nxt[i]))]
                    if len(keep) < len(rows):
                        rows, cache, mask, nxt = _select(rows, cache, mask, nxt, keep)
                    if rows:
                        nxt = self._step(rows, cache, mask, nxt)
                        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            except BaseException as exc:  # every waiting caller learns of it; the loop goes on
                log.exception("embedded decode step failed")
                for row in rows:
                    row.request.out.put(exc)
                for request in arrivals:
                    request.out.put(exc)  # one not yet joined, or joined: a second is unread
                rows, cache, mask, nxt = [], None, None, None

    def _prefill(self, request: Request) -> tuple[_Row, Any, Any]:
        import torch
        from transformers import DynamicCache

        ids = torch.tensor([request.ids])
        generator = None
        if request.seed is not None and request.temperature > 0:
            generator = torch.Generator().manual_seed(int(request.seed))
        row = _Row(request, ids[0].clone(), len(request.ids), generator=generator)
        with self.lock:
            out = self.model(input_ids=ids, cache=DynamicCache(), use_cache=True, logits_to_keep=1)
        token = self._pick([row], out.logits[:, -1, :])
        return row, out.cache, token

    def _step(self, rows: list[_Row], cache: Any, mask: Any, nxt: Any) -> Any:
        import torch

        positions = torch.tensor([[row.position] for row in rows])
        lone = len(rows) == 1
        with self.lock:
            # No attention mask: the decode step's attention (``RAGGED``) cuts each row's
            # padding itself, so building a [rows, length] mask every step would be waste.
            self.row_pad.active = lone and self.pad_lone_rows
            try:
                out = self.model(
                    input_ids=nxt[:, None],
                    position_ids=positions,
                    cache=cache,
                    use_cache=True,
                    row_starts=(mask == 0).sum(dim=1).tolist(),  # each row's leading padding
                )
            finally:
                self.row_pad.active = False
        self.lone_steps += lone
        self.padded_steps += lone and self.pad_lone_rows
        for row in rows:
            row.position += 1
        return self._pick(rows, out.logits[:, -1, :])

    def _pick(self, rows: list[_Row], logits: Any) -> Any:
        """The next token of each row: greedy, or sampled with the row's own settings."""
        import torch

        logits = logits.float()
        picks = logits.argmax(dim=-1)
        for i, row in enumerate(rows):
            r = row.request
            if (r.repetition_penalty or 1.0) == 1.0 and r.temperature <= 0:
                continue
            scores = logits[i]
            if r.repetition_penalty and r.repetition_penalty != 1.0:
                # transformers' RepetitionPenaltyLogitsProcessor (prompt and output tokens)
                seen = row.seen
                chosen = scores.gather(0, seen)
                chosen = torch.where(
                    chosen < 0, chosen * r.repetition_penalty, chosen / r.repetition_penalty
                )
                scores = scores.scatter(0, seen, chosen)
            if r.temperature <= 0:
                picks[i] = scores.argmax()
                continue
            probs = torch.softmax(scores / r.temperature, dim=-1)
            if r.top_p < 1.0:
                ordered, order = probs.sort(descending=True)
                drop = ordered.cumsum(0) - ordered > r.top_p  # keep the smallest nucleus
                ordered[drop] = 0.0
                probs = torch.zeros_like(probs).scatter(0, order, ordered)
            picks[i] = torch.multinomial(probs, 1, generator=row.generator)[0]
        return picks

    def _emit(self, row: _Row, token: int) -> bool:
        """Hand ``token`` to the row's caller; False when the row is finished."""
        import torch

        request = row.request
        if request.cancel.is_set():
            request.out.put(_DONE)
            return False
        request.out.put(token)
        row.produced += 1
        row.seen = torch.cat([row.seen, torch.tensor([token])])
        if token == self.eos_id or row.produced >= request.max_tokens:
            request.out.put(_DONE)
            return False
        return True


def _layers(cache: Any) -> list[tuple[Any, Any]]:
    return [(layer.keys, layer.values) for layer in cache.layers]


@functools.cache  # one class: transformers is imported lazily, so it is made on first use
def _growing_layer_class() -> type:
    from transformers.cache_utils import DynamicLayer

    class _GrowingLayer(DynamicLayer):
        """A layer cache whose keys/values are views of buffers with room to grow: adding a
        token writes one column (``DynamicLayer`` copies the whole cache each step)."""

        def __init__(self, keys: Any, values: Any, room: int) -> None:
            super().__init__()
            self.device, self.is_initialized = keys.device, True
            self._buffers = [_with_room(keys, room), _with_room(values, room)]
            self._length = keys.shape[-2]
            self.keys, self.values = (b[:, :, : self._length] for b in self._buffers)

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> Any:
            end = self._length + key_states.shape[-2]
            if end > self._buffers[0].shape[-2]:  # out of room (not expected): grow
                self._buffers = [_with_room(b[:, :, : self._length], end) for b in self._buffers]
            self._buffers[0][:, :, self._length : end] = key_states
            self._buffers[1][:, :, self._length : end] = value_states
            self._length = end
            self.keys, self.values = (b[:, :, :end] for b in self._buffers)
            return self.keys, self.values

    return _GrowingLayer


def _with_room(t: Any, room: int) -> Any:
    """``t`` [rows, heads, length, dim] copied into a buffer ``room`` tokens longer."""
    import torch

    rows, heads, length, dim = t.shape
    buffer = torch.empty(rows, heads, length + max(room, 1), dim, dtype=t.dtype)
    buffer[:, :, :length] = t
    return buffer


def _room(rows: Sequence[_Row]) -> int:
    """Tokens the batch may still add to its cache: the longest remaining answer."""
    return max(row.request.max_tokens - row.produced for row in rows)


def _rebuild(layers: Sequence[tuple[Any, Any]], room: int) -> Any:
    from transformers.cache_utils import Cache

    growing = _growing_layer_class()
    return Cache(layers=[growing(k, v, room) for k, v in layers])


def _left_pad(t: Any, length: int) -> Any:
    import torch

    missing = length - t.shape[-2]
    if missing <= 0:
        return t
    pad = torch.zeros(*t.shape[:-2], missing, t.shape[-1], dtype=t.dtype)
    return torch.cat([pad, t], dim=-2)


def _join(rows, cache, mask, nxt, row, kv, token):  # type: ignore[no-untyped-def]
    """The batch with ``row`` added: both sides left-padded to the longer cache."""
    import torch

    new_len = kv.get_seq_length()
    rows = rows + [row]
    if cache is None:
        mask = torch.ones(1, new_len, dtype=torch.long)
        return rows, _rebuild(_layers(kv), _room(rows)), mask, token
    length = max(cache.get_seq_length(), new_len)
    layers = [
        (
            torch.cat([_left_pad(k, length), _left_pad(k2, length)]),
            torch.cat([_left_pad(v, length), _left_pad(v2, length)]),
        )
        for (k, v), (k2, v2) in zip(_layers(cache), _layers(kv), strict=True)
    ]
    new_mask = torch.ones(1, new_len, dtype=torch.long)
    mask = torch.cat([_pad_mask(mask, length), _pad_mask(new_mask, length)])
    return rows, _rebuild(layers, _room(rows)), mask, torch.cat([nxt, token])


def _pad_mask(mask: Any, length: int) -> Any:
    import torch

    missing = length - mask.shape[1]
    if missing <= 0:
        return mask
    return torch.cat([torch.zeros(mask.shape[0], missing, dtype=mask.dtype), mask], dim=1)


def _select(rows, cache, mask, nxt, keep):  # type: ignore[no-untyped-def]
    """The batch without its finished rows, and without the padding only they needed."""
    if not keep:
        return [], None, None, None
    mask = mask[keep]
    cut = int((mask.cumsum(dim=1) == 0).sum(dim=1).min())  # leading pad columns of every row
    rows = [rows[i] for i in keep]
    layers = [(k[keep, :, cut:], v[keep, :, cut:]) for k, v in _layers(cache)]
    return rows, _rebuild(layers, _room(rows)), mask[:, cut:], nxt[keep]
