"""SCOPE generative prompt compression: ratio on target, keywords kept. No Django here.

from workers.scope import compress
result = compress(text, ratio=5, question="Who signed it?")
result.text, result.achieved_ratio, result.keyword_retention, result.chunks

Chunk semantically (embeddings), handle outlier chunks, give each chunk its own budget
from its relevance (the dynamic ratio; the least relevant are squeezed or dropped first),
rewrite each with the LLM keeping its keywords, then measure and re-fit or restore chunks
until the achieved ratio lands on the target. ``method="deletion"`` is the LLMLingua-style
baseline (drop the least informative words) in the same harness.
"""

from __future__ import annotations

from .engine import TOLERANCE, compress, compress_to_budget
from .types import ChunkTrace, CompressionError, CompressionResult
from .validation import MAX_RATIO, MAX_TARGET_TOKENS, METHODS, MIN_TARGET_TOKENS, check_target

__all__ = [
    "MAX_RATIO",
    "MAX_TARGET_TOKENS",
    "METHODS",
    "MIN_TARGET_TOKENS",
    "TOLERANCE",
    "check_target",
    "ChunkTrace",
    "CompressionError",
    "CompressionResult",
    "compress",
    "compress_to_budget",
]
