"""Data types of SCOPE compression: the result, its per-chunk trace, the error."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from workers.llm.base import Usage


class CompressionError(ValueError):
    """Bad input (empty or binary text, an impossible ratio or budget, an unknown method)."""


@dataclass
class ChunkTrace:
    """What happened to one chunk: where it came from, what it was given, what it became."""

    index: int
    start: int  # character span in the original text
    end: int
    original_tokens: int
    relevance: float = 0.0
    target_tokens: int = 0
    achieved_tokens: int = 0
    attempts: int = 0  # rewrite calls made for this chunk
    outcome: str = "rewritten"  # rewritten | trimmed | extract | verbatim | dropped | unchanged
    reason: str = ""
    keywords: list[str] = field(default_factory=list)
    keywords_kept: list[str] = field(default_factory=list)
    text: str = ""  # the compressed text of the chunk (empty when dropped)

    @property
    def dropped(self) -> bool:
        return self.outcome == "dropped"


@dataclass
class CompressionResult:
    text: str
    original_tokens: int
    compressed_tokens: int
    target_ratio: float
    target_tokens: int
    method: str
    keywords_kept: int = 0
    keywords_total: int = 0
    keywords_in_dropped: int = 0  # keywords of chunks dropped whole (not counted in total)
    unchanged: bool = False
    on_target: bool = True
    note: str = ""
    chunks: list[ChunkTrace] = field(default_factory=list)
    seconds: float = 0.0
    usage: Usage = field(default_factory=Usage)

    @property
    def achieved_ratio(self) -> float:
        return self.original_tokens / max(1, self.compressed_tokens)

    @property
    def keyword_retention(self) -> float:
        """Share of the kept chunks' keywords found in the output (1.0 when there are none)."""
        return self.keywords_kept / self.keywords_total if self.keywords_total else 1.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (a job row stores it)."""
        return {
            "text": self.text,
            "method": self.method,
            "original_tokens": self.original_tokens,
            "compressed_tokens": self.compressed_tokens,
            "target_ratio": round(self.target_ratio, 4),
            "target_tokens": self.target_tokens,
            "achieved_ratio": round(self.achieved_ratio, 4),
            "keyword_retention": round(self.keyword_retention, 4),
            "keywords_kept": self.keywords_kept,
            "keywords_total": self.keywords_total,
            "keywords_in_dropped": self.keywords_in_dropped,
            "unchanged": self.unchanged,
            "on_target": self.on_target,
            "note": self.note,
            "chunks": [asdict(c) for c in self.chunks],
            "seconds": round(self.seconds, 3),
            "usage": {
                "prompt_tokens": self.usage.prompt_tokens,
                "completion_tokens": self.usage.completion_tokens,
            },
        }
