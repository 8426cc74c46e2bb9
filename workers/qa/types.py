"""Data types of question answering: inputs, the answer, its citations and its trace."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from workers.llm.base import Usage
from workers.llm.errors import ContextOverflow

DocumentId = str | int


class SourceDocument:
    """A document to answer from: its ``text``, or ``load`` to read the text on first use.

    With a loader, choosing a strategy reads nothing when ``tokens`` (the text's length in
    the LLM's tokens, counted at ingest) is given, and with ``load_span(start, end)`` too a
    strategy that reads passages of the search index (rag) reads only those (``span``).
    Equal documents: same id, title and text."""

    __slots__ = ("_load", "_load_span", "_spans", "_text", "id", "title", "tokens")

    def __init__(
        self,
        id: DocumentId,  # noqa: A002 - the name citations and the app use
        title: str,
        text: str | None = None,
        *,
        tokens: int | None = None,
        load: Callable[[], str] | None = None,
        load_span: Callable[[int, int], str] | None = None,
    ) -> None:
        if (text is None) == (load is None):
            raise TypeError("a SourceDocument takes its text or a loader of it (one of them)")
        self.id, self.title, self.tokens = id, title, tokens
        self._text, self._load, self._load_span = text, load, load_span
        self._spans: dict[tuple[int, int], str] = {}

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = str(self._load())  # type: ignore[misc]
            self._load = self._load_span = None
            self._spans.clear()
        return self._text

    def span(self, start: int, end: int) -> str:
        """``text[start:end]`` (0 <= start <= end), reading only the span where it can."""
        if self._text is not None or self._load_span is None or not 0 <= start <= end:
            return self.text[start:end]
        key = (start, end)
        if key not in self._spans:
            self._spans[key] = str(self._load_span(start, end))
        return self._spans[key]

    @property
    def loaded(self) -> bool:
        return self._text is not None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SourceDocument):
            return NotImplemented
        return self is other or (
            (self.id, self.title) == (other.id, other.title) and self.text == other.text
        )

    def __hash__(self) -> int:
        return hash((self.id, self.title))

    def __repr__(self) -> str:
        state = "loaded" if self.loaded else "not loaded"
        return f"SourceDocument({self.id!r}, {self.title!r}, tokens={self.tokens}, {state})"


@dataclass(frozen=True)
class Citation:
    """A character span of a source document: ``document.text[start:end] == quote``."""

    document_id: DocumentId
    start: int
    end: int
    quote: str


@dataclass(frozen=True)
class Passage:
    """What a retriever returns: a span of a document and its relevance score.

    ``sentences``: the sentence windows inside it that matched the question at the fine
    level (document offsets, best first), when the retriever indexes sentences
    (small-to-big: matched small, read big). Strategies use them as evidence."""

    document_id: DocumentId
    start: int
    end: int
    text: str
    score: float
    sentences: tuple[tuple[int, int], ...] = ()


Retriever = Callable[[str, int], list[Passage]]
TokenCallback = Callable[[str], None]


@dataclass
class TraceStep:
    """One step of a strategy: what went in, what came out, what the agents noted."""

    name: str
    inputs: dict[str, Any] = field(default_factory=dict)
    tokens_in: int = 0
    tokens_out: int = 0
    notes: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class Answer:
    text: str
    citations: list[Citation]
    trace: list[TraceStep]
    usage: Usage
    strategy: str
    reason: str = ""
    # The grounding check (``grounding.py``): every claim supported by a cited span; or the
    # documents do not appear to answer it (the text says so, the citations are the closest
    # passages, not support). Neither: partly supported or not checked ("not verified").
    grounded: bool = False
    abstained: bool = False
    grounding: dict[str, Any] = field(default_factory=dict)  # verdict, reasons, evidence
    # The answer reached its token room: it ends at its last finished sentence.
    shortened: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the job row stores it)."""
        return {
            "text": self.text,
            "citations": [asdict(c) for c in self.citations],
            "trace": [asdict(s) for s in self.trace],
            "usage": {
                "prompt_tokens": self.usage.prompt_tokens,
                "completion_tokens": self.usage.completion_tokens,
            },
            "strategy": self.strategy,
            "reason": self.reason,
            "grounded": self.grounded,
            "abstained": self.abstained,
            "grounding": self.grounding,
            "shortened": self.shortened,
        }


class QuestionTooLong(ContextOverflow):
    """The question (with instructions, history and room for the answer) fills the window."""


class DocumentsTooLong(ContextOverflow):
    """``full`` was asked for documents that do not fit the window with room for the answer."""


class UnknownStrategy(ValueError):
    pass
