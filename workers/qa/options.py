"""The strategies and their options, defined once.

``STRATEGIES`` is the one list (the chat's choices, the API's enum and ``answer()`` read
it). Each strategy's options are one frozen dataclass: field names are the keyword
arguments of the strategy function, with their types, defaults and bounds. ``parse_options``
validates a client's mapping against it, field by field; ``answer()``, the API and the chat
all call it, so a value the API accepts is one the engine runs.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .coa import DEFAULT_CU_TOKENS
from .compression import check_ratio
from .mapreduce import DEFAULT_NOTE_TOKENS, SERIAL_CHUNK_TOKENS
from .rag import DEFAULT_CONTEXT_TOKENS, DEFAULT_TOP_K
from .types import UnknownStrategy
from .xl3m import (
    DEFAULT_KEEP_SEGMENTS,
    DEFAULT_KEY_SENTENCES,
    DEFAULT_SEGMENT_TOKENS,
    FAST_PATH_CANDIDATES,
)

MAX_INT = 1_000_000  # no option counts more than this (tokens, passages, segments)


def option(default: Any, help: str, *, low: int = 1, high: int = MAX_INT) -> Any:
    """A strategy option: its default, a line for people, and bounds for integers."""
    return field(default=default, metadata={"help": help, "low": low, "high": high})


@dataclass(frozen=True)
class StrategyOptions:
    """Options of every strategy (and all that ``auto`` takes)."""

    compress: float | None = option(
        None, "read this many times more text, SCOPE-compressed into the same budget "
        "(a ratio above 1 and at most 10; off when absent)")

    def strategy_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of the strategy function (the common options aside)."""
        common = {f.name for f in dataclasses.fields(StrategyOptions)}
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name not in common}


@dataclass(frozen=True)
class FullOptions(StrategyOptions):
    pass


@dataclass(frozen=True)
class RagOptions(StrategyOptions):
    top_k: int = option(DEFAULT_TOP_K, "passages retrieved", high=1000)
    context_tokens: int = option(DEFAULT_CONTEXT_TOKENS, "tokens of passages given to the model")
    dense: bool = option(False, "embeddings beside BM25 in the in-memory retriever (used "
                         "when the caller gives no retriever)")


@dataclass(frozen=True)
class CoaOptions(StrategyOptions):
    cu_tokens: int = option(DEFAULT_CU_TOKENS, "tokens of each worker's message (CU)")
    chunk_tokens: int | None = option(None, "tokens each worker reads (the window when absent)",
                                      low=16)
    evidence: bool | None = option(None, "carry quoted evidence in the CU (automatic when "
                                   "absent)")
    dense: bool = option(True, "embeddings in the evidence pre-filter")


@dataclass(frozen=True)
class MapReduceOptions(StrategyOptions):
    note_tokens: int = option(DEFAULT_NOTE_TOKENS, "tokens of each chunk's note", low=16)
    chunk_tokens: int | None = option(None, "tokens each map call reads (when absent: the "
                                      f"window, {SERIAL_CHUNK_TOKENS:,} on a backend that "
                                      "prefills one prompt at a time)", low=16)


@dataclass(frozen=True)
class Xl3mOptions(StrategyOptions):
    segment_tokens: int = option(DEFAULT_SEGMENT_TOKENS, "tokens per scored segment", low=16)
    keep_segments: int = option(DEFAULT_KEEP_SEGMENTS, "segments kept for the key context",
                                high=1000)
    key_sentences: int = option(DEFAULT_KEY_SENTENCES, "sentences of the key context",
                                high=1000)
    fast_path: bool | None = option(None, "pre-filter segments before scoring (automatic "
                                    "when absent: on past ~48k tokens)")
    candidates: int = option(FAST_PATH_CANDIDATES, "segments scored on the fast path",
                             high=1000)
    dense: bool = option(True, "embeddings in the pre-filter")


@dataclass(frozen=True)
class Strategy:
    name: str
    label: str
    options: type[StrategyOptions]


STRATEGIES: dict[str, Strategy] = {s.name: s for s in (
    Strategy("auto", "Automatic", StrategyOptions),
    Strategy("rag", "Retrieval (RAG)", RagOptions),
    Strategy("coa", "Chain-of-Agents", CoaOptions),
    Strategy("mapreduce", "Map-reduce (parallel)", MapReduceOptions),
    Strategy("xl3m", "XL3M segment scoring", Xl3mOptions),
    Strategy("full", "Full context", FullOptions),
)}
STRATEGY_NAMES: tuple[str, ...] = tuple(STRATEGIES)


def get_strategy(name: object) -> Strategy:
    if not isinstance(name, str) or name not in STRATEGIES:
        raise UnknownStrategy(f"unknown strategy “{name}”; choose from "
                              f"{', '.join(STRATEGY_NAMES)}")
    return STRATEGIES[name]


def option_names(strategy: str) -> list[str]:
    return [f.name for f in dataclasses.fields(get_strategy(strategy).options)]


def _kinds(annotation: Any) -> set[type]:
    """The plain types an annotation admits: ``int | None`` → {int, NoneType}."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return set(typing.get_args(annotation))
    return {annotation}


def _check(name: str, value: Any, kinds: set[type], meta: Mapping[str, Any]) -> Any:
    if value is None and type(None) in kinds:
        return None
    if float in kinds:  # the compression ratio: its own rules and messages
        try:
            return check_ratio(value)
        except ValueError as err:
            raise ValueError(f"option {err}") from None
    if bool in kinds:
        if not isinstance(value, bool):
            raise ValueError(f"option {name} must be true or false")
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"option {name} must be an integer")
    if not meta["low"] <= value <= meta["high"]:
        raise ValueError(f"option {name} must be between {meta['low']:,} and "
                         f"{meta['high']:,}, not {value:,}")
    return value


def parse_options(strategy: str, raw: Mapping[str, Any] | None = None, *,
                  also_allowed: Iterable[str] = ()) -> StrategyOptions:
    """``raw`` (a client's mapping) as the strategy's typed options. ``ValueError`` names
    the option and the rule; names in ``also_allowed`` (the caller's own, e.g. the API's
    ``answer_tokens``) are skipped and listed among the allowed."""
    cls = get_strategy(strategy).options
    raw = {} if raw is None else raw
    if not isinstance(raw, Mapping):
        raise ValueError("options must be an object")
    also = set(also_allowed)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(str(k) for k in raw if k not in fields and k not in also)
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)} for strategy {strategy}; "
                         f"allowed: {', '.join(sorted(set(fields) | also))}")
    hints = typing.get_type_hints(cls)
    values = {name: _check(name, value, _kinds(hints[name]), fields[name].metadata)
              for name, value in raw.items() if name in fields}
    return cls(**values)


def given_options(options: StrategyOptions) -> dict[str, Any]:
    """The options that differ from their defaults, as JSON-ready data (what to store)."""
    return {f.name: getattr(options, f.name) for f in dataclasses.fields(options)
            if getattr(options, f.name) != f.default}


def options_help() -> str:
    """Each strategy's options with type and default, for the API schema and docs."""
    def kind(annotation: Any) -> str:
        names = sorted(k.__name__ for k in _kinds(annotation) if k is not type(None))
        return " | ".join(names) + (" | null" if type(None) in _kinds(annotation) else "")

    lines = ["qa: the strategy's options (also answer_tokens: the answer's length)."]
    for s in STRATEGIES.values():
        hints = typing.get_type_hints(s.options)
        described = ", ".join(f"{f.name} ({kind(hints[f.name])}, default {f.default})"
                              for f in dataclasses.fields(s.options))
        lines.append(f"{s.name}: {described}.")
    return " ".join(lines)
