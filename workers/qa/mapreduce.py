"""``mapreduce`` (LLM×MapReduce): every chunk read at once, then notes collapsed and reduced.

Map: each chunk (window-sized, all documents in order) becomes a structured note: the
facts it holds (quoted verbatim by the model, plus the chunk's best sentences for the
question by BM25, which the engine adds so a 135M model's misquotes cost nothing), a
partial answer and a confidence. The map calls run concurrently, bounded by the backend's
one concurrency setting (``LLM_CONCURRENCY`` over HTTP, so vLLM's continuous batching sees
them together; ``LLM_BATCH_SIZE`` in process, where they share decode steps). Collapse:
notes are grouped to fit the window and each group is merged into one note (concurrently
too), until one group fits. Reduce: the answer from the notes, ordered by confidence (a
conflict goes to the more confident part), cited from the facts' exact spans.

A chunk whose call fails is retried once; if it fails again the trace says so
(``map.notes.failed``) and the answer names the part that could not be read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from workers.documents.chunking import segments
from workers.documents.lexical import BM25Index, rrf
from workers.llm.base import concurrency

from .answering import final_answer
from .budget import content_budget
from .citations import locate, quoted, sentence_units
from .prompts import SYSTEM_PROMPT, document_block, notes_block
from .questions import wants_whole_document
from .run import Run
from .scoring import Span, prefilter_sentences, typed_ranking
from .types import Citation, QuestionTooLong, SourceDocument

DEFAULT_NOTE_TOKENS = 160  # what one map or collapse call may write
ENGINE_FACTS = 2  # the chunk's best sentences by BM25, kept in its note
NOTE_FACTS = 6  # facts a note carries at most (a collapsed one too)
MIN_CHUNK_TOKENS = 128
# On a backend that prefills one prompt at a time (the in-process model on a CPU) a chunk's
# attention grows with its square: a 7.3k-token prompt cost 2.15x per token what a 2k one
# did (docs/qa.md). Batched servers read window-sized chunks (fewer notes to merge).
SERIAL_CHUNK_TOKENS = 2048
JOIN_SLACK_TOKENS = 64  # what counting a prompt's parts apart may miss of the whole
LONGEST_PART_LABEL = "99999 of 99999"  # a chunk's block says which part it is

MAP_INSTRUCTIONS = (
    "Read the part of a text below and note what it says about the question. Copy the "
    "sentences that matter word for word inside double quotes, then write one line "
    "'Answer:' with the answer this part gives (or 'none'), and one line 'Confidence:' "
    "with a number from 0 to 100."
)
MAP_SUMMARY_INSTRUCTIONS = (
    "Read the part of a text below and summarise what it says, guided by the request, in "
    "two or three sentences. Write them on one line starting with 'Answer:'."
)
COLLAPSE_INSTRUCTIONS = (
    "Below are notes taken from several parts of a text. Merge them into one note for the "
    "question: if they disagree, prefer the more confident. Write one line 'Answer:' with "
    "the answer, and one line 'Confidence:' with a number from 0 to 100."
)
REDUCE_INSTRUCTIONS = (
    "Answer the question from the notes below, taken from every part of the text; the most "
    "confident come first. Give the answer first, briefly."
)

_ANSWER = re.compile(r"(?im)^[ \t*-]{0,4}answer\s?:[ \t]*(.+)$")
_CONFIDENCE = re.compile(r"(?i)confidence\s?:?[ \t]*(\d{1,3})")
_NONE = re.compile(r"(?i)^\W*(?:none|n/a|nothing|not (?:mentioned|stated|found))\b")


@dataclass
class Fact:
    span: Span
    source: str  # "model" (its quote, located) or "engine" (BM25's pick)


@dataclass
class Note:
    """One chunk's (or one group's) note: facts, partial answer, confidence (0-100)."""

    label: str  # "chunk 3" or "collapse 1.2"
    answer: str
    confidence: int
    facts: list[Fact] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)

    def render(self) -> str:
        """What the next stage reads: the partial answer and the facts, no labels to echo."""
        lines = [f"- {self.answer}" if self.answer else "- (nothing relevant)"]
        lines += [f'  "{f.span.text}"' for f in self.facts]
        return "\n".join(lines)


def parse_note(text: str, summary: bool = False) -> tuple[str, int | None, list[str]]:
    """(partial answer, confidence or None, quotes) from a model's note. Untrusted text:
    a missing line gives an empty answer / None, never an error; "none" is no answer."""
    match = _ANSWER.search(text)
    answer = match.group(1).strip() if match else ""
    if not match and summary:
        answer = " ".join(text.split())
    if _NONE.match(answer):
        answer = ""
    conf = _CONFIDENCE.search(text)
    confidence = min(100, int(conf.group(1))) if conf else None
    quotes = [q for q in quoted(text) if q and q not in answer]
    return answer, confidence, quotes


def group_sizes(sizes: Sequence[int], budget: int) -> list[list[int]]:
    """Consecutive groups of items whose sizes add up to at most ``budget`` (an item bigger
    than the budget alone in its group), in order: the notes of one collapse call."""
    groups: list[list[int]] = []
    used = 0
    for i, size in enumerate(sizes):
        if groups and used + size <= budget:
            groups[-1].append(i)
            used += size
        else:
            groups.append([i])
            used = size
    return groups


def chunk_cap(backend: Any) -> int | None:
    """The most tokens a map call reads by default: ``SERIAL_CHUNK_TOKENS`` where the backend
    prefills one prompt at a time, else None (window-sized chunks)."""
    return None if backend.capabilities.concurrent_batch else SERIAL_CHUNK_TOKENS


def _messages(instructions: str, body: str, question: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"{instructions}\n\n{body}\n\nQuestion: {question}"},
    ]


def _map_all(
    run: Run, calls: Sequence[list[dict[str, str]]], max_tokens: int, stage: str
) -> tuple[list[str | None], list[dict[str, Any]]]:
    """Every call at once (bounded), each retried once: texts (None: failed twice), failures.

    The calls go to the backend from pool threads; their usage is added here, in the
    caller's thread, so the Run's totals and trace step are never updated concurrently."""
    backend = run.backend
    texts: list[str | None] = [None] * len(calls)
    failures: list[dict[str, Any]] = []

    def call(messages: list[dict[str, str]]) -> Any:
        return backend.chat(messages, max_tokens=max_tokens, temperature=0)

    with ThreadPoolExecutor(max_workers=min(concurrency(backend), max(1, len(calls)))) as pool:
        futures: dict[int, Future] = {i: pool.submit(call, m) for i, m in enumerate(calls)}
        retried: set[int] = set()
        done = 0
        while futures:
            i = next(iter(futures))
            future = futures.pop(i)
            try:
                result = future.result()
            except Exception as exc:  # a chunk may fail: retried once, then reported
                if i not in retried:
                    retried.add(i)
                    futures[i] = pool.submit(call, calls[i])
                    continue
                failures.append({"item": i, "error": f"{type(exc).__name__}: {exc}"})
                continue
            run.add_usage(result.usage)
            texts[i] = result.text.strip()
            done += 1
            try:
                run.check(done, len(calls), f"mapreduce: {stage} {done} of {len(calls)}")
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    return texts, failures


def _chunks(run: Run, question: str, documents: Sequence[SourceDocument], instructions: str,
            note_tokens: int, cap: int | None) -> list[Span]:
    window = run.backend.context_window
    spans: list[Span] = []
    for d in documents:
        # The block as the map call sends it (the document's id and title, the longest part
        # label), and slack: a text's tokens inside the prompt can merge differently at its
        # ends than counted alone. (An empty block's framing left chunks a few tokens over.)
        block = document_block(d.id, d.title, "", part=LONGEST_PART_LABEL)
        overhead = run.count(_messages(instructions, block, question)) + JOIN_SLACK_TOKENS
        budget = window - overhead - note_tokens
        if budget < MIN_CHUNK_TOKENS:
            raise QuestionTooLong(overhead, window, note_tokens,
                                  message=f"the question leaves {max(budget, 0)} tokens of "
                                  f"the {window}-token window for a chunk: shorten it")
        budget = min(budget, cap) if cap else budget
        spans += [Span(d, c.start, c.end) for c in segments(d.text, budget, run.count)]
    return spans


def _engine_facts(question: str, chunk: Span) -> list[Fact]:
    units = [Span(chunk.document, s, e)
             for s, e in sentence_units(chunk.document.text, chunk.start, chunk.end)]
    keep, _ = prefilter_sentences(question, units, ENGINE_FACTS, dense=False)
    return [Fact(units[k], "engine") for k in keep[:ENGINE_FACTS]]


def _note(label: str, text: str, chunk: Span, question: str, summary: bool) -> Note:
    answer, confidence, quotes = parse_note(text, summary)
    facts, unverified = [], []
    for q in quotes:
        span = locate(q, chunk.document.text, chunk.start, chunk.end)
        if span:
            facts.append(Fact(Span(chunk.document, *span), "model"))
        else:
            unverified.append(q)
    if not summary:
        facts += _engine_facts(question, chunk)
    if confidence is None:  # the model gave none: what it found vouches for it
        confidence = 50 if answer and facts else (25 if answer else 0)
    return Note(label, answer, confidence, _unique(facts)[:NOTE_FACTS], unverified)


def _unique(facts: Sequence[Fact]) -> list[Fact]:
    seen: set[tuple[object, int, int]] = set()
    out = []
    for f in facts:
        key = (f.span.document.id, f.span.start, f.span.end)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def ranked_facts(question: str, notes: Sequence[Note]) -> list[Fact]:
    """The notes' facts, best first: their notes' confidence (ties: BM25), BM25's ranking
    for the question, and the facts holding an answer of the asked kind, fused (RRF).

    Confidence alone is a small model's word: at 128k every map note of a pass-key
    question had confidence 0, so the facts stood in chunk order, the key's sentence
    10th, and the answer was taken from the first five ("1950s")."""
    pool: dict[tuple[object, int, int], tuple[Fact, int]] = {}
    for n in notes:
        for f in n.facts:
            pool.setdefault((f.span.document.id, f.span.start, f.span.end), (f, n.confidence))
    facts, conf = [f for f, _ in pool.values()], [c for _, c in pool.values()]
    if len(facts) < 2:
        return facts
    texts = [f.span.text for f in facts]
    lexical = [int(i) for i, _ in BM25Index(texts).search(question, k=len(texts))]
    place = {i: r for r, i in enumerate(lexical)}
    by_confidence = sorted(range(len(facts)), key=lambda i: (-conf[i], place.get(i, len(facts))))
    typed = typed_ranking(question, texts, lexical or list(range(len(facts))))
    fused = [int(i) for i, _ in rrf([by_confidence, lexical, *([typed] if typed else [])])]
    return [facts[i] for i in fused]


def _collapse(run: Run, question: str, notes: list[Note], note_tokens: int,
              summary: bool, answer_tokens: int) -> list[Note]:
    """Merge notes in window-sized groups until one group holds them all (the tree is
    recorded on ``collapse`` steps: which notes fed which, with confidences)."""
    level = 0
    window = run.backend.context_window
    overhead = run.count(_messages(COLLAPSE_INSTRUCTIONS, notes_block(""), question))
    # Room for what a merge (or the reduce, which reads the last group) writes, and slack.
    budget = window - overhead - max(note_tokens, answer_tokens) - JOIN_SLACK_TOKENS
    while True:
        sizes = [run.count(n.render()) for n in notes]
        groups = group_sizes(sizes, budget)
        if len(groups) <= 1:  # fits one call (or nothing was read)
            return notes
        level += 1
        with run.step("collapse", level=level, groups=len(groups)) as step:
            calls = [
                _messages(COLLAPSE_INSTRUCTIONS,
                          notes_block("\n".join(notes[i].render() for i in g)), question)
                for g in groups
            ]
            texts, failures = _map_all(run, calls, note_tokens, f"collapse level {level}")
            merged, tree = [], []
            for gi, (group, text) in enumerate(zip(groups, texts, strict=True)):
                members = sorted((notes[i] for i in group), key=lambda n: -n.confidence)
                facts = ranked_facts(question, members)[:NOTE_FACTS]
                if text is None:  # the merge failed twice: keep the best member's answer
                    answer, confidence = members[0].answer, members[0].confidence
                else:
                    answer, conf, _ = parse_note(text, summary)
                    confidence = conf if conf is not None else members[0].confidence
                label = f"collapse {level}.{gi + 1}"
                merged.append(Note(label, answer, confidence, facts))
                tree.append({"note": label, "confidence": confidence,
                             "from": [{"note": notes[i].label,
                                       "confidence": notes[i].confidence} for i in group]})
            step.notes.update({"tree": tree, "failed": failures})
        notes = merged


def answer_mapreduce(
    run: Run,
    question: str,
    documents: Sequence[SourceDocument],
    *,
    history: Sequence[Mapping[str, str]] | None = None,
    answer_tokens: int = 128,
    note_tokens: int = DEFAULT_NOTE_TOKENS,
    chunk_tokens: int | None = None,
    retrieve: Callable[..., Any] | None = None,  # noqa: ARG001 - every chunk is read
) -> tuple[str, list[Citation]]:
    content_budget(run.backend, question, history, answer_tokens)  # refuses an over-long question
    summary = wants_whole_document(question)
    run.check(0, 1, "mapreduce: chunking")
    instructions = MAP_SUMMARY_INSTRUCTIONS if summary else MAP_INSTRUCTIONS
    if chunk_tokens is None:
        chunk_tokens = chunk_cap(run.backend)
    with run.step("chunk", cap=chunk_tokens) as step:
        chunks = _chunks(run, question, documents, instructions, note_tokens, chunk_tokens)
        step.notes.update({"chunks": len(chunks), "task": "summary" if summary else "qa",
                           "concurrency": concurrency(run.backend)})

    with run.step("map", chunks=len(chunks)) as step:
        calls = [
            _messages(instructions, document_block(c.document.id, c.document.title, c.text,
                                                   part=f"{i + 1} of {len(chunks)}"), question)
            for i, c in enumerate(chunks)
        ]
        texts, failures = _map_all(run, calls, note_tokens, "map")
        notes = [_note(f"chunk {i + 1}", text, chunks[i], question, summary)
                 for i, text in enumerate(texts) if text is not None]
        step.notes["notes"] = [
            {"note": n.label, "answer": n.answer, "confidence": n.confidence,
             "facts": [{"start": f.span.start, "end": f.span.end, "source": f.source}
                       for f in n.facts], "quotes_unverified": n.unverified}
            for n in notes
        ]
        step.notes["failed"] = [
            {"chunk": f["item"] + 1, "document_id": chunks[f["item"]].document.id,
             "start": chunks[f["item"]].start, "end": chunks[f["item"]].end, "error": f["error"]}
            for f in failures
        ]

    notes = _collapse(run, question, notes, note_tokens, summary, answer_tokens)
    run.check(1, 1, "mapreduce: reduce")
    with run.step("reduce", notes=len(notes)) as step:
        ranked = sorted(notes, key=lambda n: -n.confidence)
        evidence = [f.span for f in ranked_facts(question, ranked)]
        final = final_answer(
            run, question, [notes_block("\n".join(n.render() for n in ranked))], documents,
            history=history, max_tokens=answer_tokens, evidence=evidence or None,
            instructions=REDUCE_INSTRUCTIONS,
        )
        step.notes.update(final.notes)
        step.notes["confidences"] = {n.label: n.confidence for n in ranked}
    return final.text, final.citations


def unread_notice(steps: Sequence[Any]) -> str | None:
    """The sentence the answer ends with when chunks could not be read (from the trace)."""
    failed = [f for s in steps if s.name == "map" for f in s.notes.get("failed", [])]
    if not failed:
        return None
    parts = "; ".join(f"part {f['chunk']} (document {f['document_id']}, characters "
                      f"{f['start']}-{f['end']})" for f in failed)
    return f"(Could not be read, so not used: {parts}.)"
