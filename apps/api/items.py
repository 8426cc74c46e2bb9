"""The registry of batch item kinds: how an item's input is checked, and how it runs.

A kind's `validate` turns the client's JSON into the stored input or raises ItemInvalid
with a precise message; nothing is enqueued unless every item of a batch passes. `run`
is called by the batch_item job with the item, its team and the job's progress callable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings

from apps.collections import access
from apps.documents.citations import QUOTE_CHARS, citation_dicts
from apps.documents.models import DocStatus
from apps.documents.search import passage_retriever
from apps.documents.sources import source_documents, without_text
from apps.writing import services as writing
from workers.llm import get_backend
from workers.qa.budget import DEFAULT_ANSWER_TOKENS, MAX_QUESTION_CHARS, check_question
from workers.qa.engine import answer
from workers.qa.options import given_options, parse_options
from workers.scope import CompressionError, compress
from workers.scope.validation import check_method, check_target
from workers.writing import check_request, make_plan, target_words_for, write_document
from workers.writing.citing import number_citations
from workers.writing.writer import join_sections

MAX_DOCUMENTS_PER_ITEM = 100
MAX_ANSWER_TOKENS = 4096
MAX_TEXT_CHARS = 2_000_000


class ItemInvalid(ValueError):
    """An item's input is refused; the message names the field and the reason."""


class NotReady(Exception):
    """A document of the item is still being ingested: the job retries later."""

    transient = True


@dataclass(frozen=True)
class ItemKind:
    name: str
    fields: tuple[str, ...]
    required: tuple[str, ...]
    validate: Callable[[dict], dict]
    run: Callable[..., dict]
    document_ids: Callable[[dict], list[int]] = field(default=lambda data: [])
    # The collection an item names as its source (write), checked like its documents.
    collection_id: Callable[[dict], int | None] = field(default=lambda data: None)


_KINDS: dict[str, ItemKind] = {}


def register(kind: ItemKind) -> ItemKind:
    _KINDS[kind.name] = kind
    return kind


def get_item_kind(name: str) -> ItemKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise ItemInvalid(f"Unknown kind “{name}”; choose from {', '.join(_KINDS)}.") from None


def item_kinds() -> list[str]:
    return list(_KINDS)


def check_fields(kind: ItemKind, data) -> dict:
    if not isinstance(data, dict):
        raise ItemInvalid(f"must be a JSON object, not {type(data).__name__}")
    unknown = sorted(set(data) - set(kind.fields))
    if unknown:
        raise ItemInvalid(f"unknown field(s) {', '.join(unknown)}; a {kind.name} item takes "
                          f"{', '.join(kind.fields)}")
    missing = [f for f in kind.required if data.get(f) in (None, "", [])]
    if missing:
        raise ItemInvalid(f"missing {', '.join(missing)}")
    return data


def _text(data: dict, name: str, limit: int | None) -> str:
    """A text field, stripped; ``limit`` None: the engine's own check counts its length."""
    value = data.get(name)
    if not isinstance(value, str):
        raise ItemInvalid(f"{name} must be a string")
    value = value.strip()
    if not value:
        raise ItemInvalid(f"{name} is empty")
    # Neither can be stored (PostgreSQL text refuses NUL; UTF-8 has no lone surrogates).
    if "\x00" in value:
        raise ItemInvalid(f"{name} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ItemInvalid(f"{name} is not valid Unicode (a lone surrogate)") from None
    if limit is not None and len(value) > limit:
        raise ItemInvalid(f"{name} is too long ({len(value):,} characters; at most {limit:,})")
    return value


def _int(data: dict, name: str, low: int, high: int) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ItemInvalid(f"{name} must be an integer")
    if not low <= value <= high:
        raise ItemInvalid(f"{name} must be between {low:,} and {high:,}, not {value:,}")
    return value


def ready_documents(team, ids: list[int], documents=None) -> list:
    """The item's documents, in the order given; a document still ingesting retries later.
    ``documents``: those the submitter may read now (default: the team's)."""
    library = team.documents.all() if documents is None else documents
    found = {d.pk: d for d in without_text(library.filter(pk__in=ids))}
    missing = [i for i in ids if i not in found]
    if missing:
        raise ValueError(f"Document(s) {', '.join(map(str, missing))} no longer exist.")
    failed = [d for d in found.values() if d.status == DocStatus.FAILED]
    if failed:
        raise ValueError("Document(s) failed to ingest: "
                         + ", ".join(f"{d.pk} ({d.error or 'unreadable'})" for d in failed))
    waiting = [d.pk for d in found.values() if d.status != DocStatus.READY]
    if waiting:
        raise NotReady(f"Document(s) {', '.join(map(str, waiting))} are still being ingested.")
    return [found[i] for i in ids]


# -- QA ----------------------------------------------------------------------------------------


def validate_qa(data: dict) -> dict:
    ids = data.get("document_ids")
    if not isinstance(ids, list) or not ids or not all(
            isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in ids):
        raise ItemInvalid("document_ids must be a non-empty list of document ids (integers)")
    if len(ids) > MAX_DOCUMENTS_PER_ITEM:
        raise ItemInvalid(f"document_ids has {len(ids)} ids; at most {MAX_DOCUMENTS_PER_ITEM}")
    strategy = data.get("strategy") or "auto"
    raw = data.get("options") or {}
    try:  # the strategy and its typed options, as answer() will check them
        options = parse_options(strategy, raw, also_allowed=["answer_tokens"])
    except ValueError as err:
        raise ItemInvalid(str(err)) from None
    question = _text(data, "question", None)
    try:  # the engine's question rules (punctuation only, length): one definition
        question = check_question(question)
    except ValueError as err:
        raise ItemInvalid(f"question: {err}") from None
    clean = {"question": question, "document_ids": list(dict.fromkeys(ids)),
             "strategy": strategy, "options": given_options(options)}
    if "answer_tokens" in raw:
        clean["answer_tokens"] = _int(raw, "answer_tokens", 1, MAX_ANSWER_TOKENS)
    return clean


def run_qa(item, team, progress) -> dict:
    data = item.input
    documents = ready_documents(team, data["document_ids"])
    by_id = {d.pk: d for d in documents}
    result = answer(data["question"], source_documents(documents),
                    data["strategy"], retrieve=passage_retriever(team, list(by_id)),
                    progress=progress,
                    answer_tokens=data.get("answer_tokens", DEFAULT_ANSWER_TOKENS),
                    options=data.get("options") or None, grounding=settings.QA_GROUNDING)
    progress.add_tokens(result.usage.prompt_tokens, result.usage.completion_tokens)
    return {
        "answer": result.text, "grounded": result.grounded, "abstained": result.abstained,
        "grounding": result.grounding, "strategy": result.strategy, "reason": result.reason,
        "citations": citation_dicts(result.citations, by_id),
        "usage": {"prompt_tokens": result.usage.prompt_tokens,
                  "completion_tokens": result.usage.completion_tokens},
    }


register(ItemKind("qa", ("question", "document_ids", "strategy", "options"),
                  ("question", "document_ids"), validate_qa, run_qa,
                  document_ids=lambda data: data["document_ids"]))


# -- Compression -------------------------------------------------------------------------------


def validate_compress(data: dict) -> dict:
    has_text, has_doc = data.get("text") not in (None, ""), data.get("document_id") is not None
    if has_text == has_doc:
        raise ItemInvalid("give exactly one of text or document_id")
    clean: dict = {"method": data.get("method") or "scope"}
    if has_text:
        clean["text"] = _text(data, "text", MAX_TEXT_CHARS)
    else:
        doc = data["document_id"]
        if isinstance(doc, bool) or not isinstance(doc, int) or doc <= 0:
            raise ItemInvalid("document_id must be a document id (integer)")
        clean["document_id"] = doc
    ratio, target = data.get("ratio"), data.get("target_tokens")
    if ratio is not None:
        clean["ratio"] = ratio
    if target is not None:
        clean["target_tokens"] = target
    if data.get("question") not in (None, ""):
        clean["question"] = _text(data, "question", MAX_QUESTION_CHARS)
    try:  # the engine's own checks: the same messages as everywhere else
        check_method(clean["method"])
        check_target(ratio, target)
    except ValueError as err:
        raise ItemInvalid(str(err)) from None
    return clean


def run_compress(item, team, progress) -> dict:
    data = item.input
    text = data.get("text")
    if text is None:
        text = ready_documents(team, [data["document_id"]])[0].text
    try:
        result = compress(text, ratio=data.get("ratio"), target_tokens=data.get("target_tokens"),
                          question=data.get("question"), progress=progress,
                          method=data.get("method", "scope"))
    except CompressionError as err:
        raise ValueError(str(err)) from err
    return result.to_dict()


register(ItemKind("compress",
                  ("text", "document_id", "ratio", "target_tokens", "question", "method"),
                  (), validate_compress, run_compress,
                  document_ids=lambda data: [data["document_id"]] if "document_id" in data
                  else []))


# -- Writing -----------------------------------------------------------------------------------


def _ids(data: dict, name: str) -> list[int]:
    ids = data.get(name)
    if not isinstance(ids, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in ids):
        raise ItemInvalid(f"{name} must be a list of document ids (integers)")
    if len(ids) > MAX_DOCUMENTS_PER_ITEM:
        raise ItemInvalid(f"{name} has {len(ids)} ids; at most {MAX_DOCUMENTS_PER_ITEM}")
    return list(dict.fromkeys(ids))


def validate_write(data: dict) -> dict:
    instruction = _text(data, "instruction", None)  # check_request: its length
    given = _int(data, "target_words", 50, 50_000) if data.get("target_words") is not None \
        else None  # else the length the instruction states ("a 400-word essay"), or the default
    clean = {"instruction": instruction, "target_words": target_words_for(instruction, given)}
    if data.get("style") not in (None, ""):
        clean["style"] = _text(data, "style", 2000)
    # Sources (optional): reference documents and/or a collection; whether the submitter may
    # read them is checked with the batch (services.check_items), and again when it runs.
    if data.get("document_ids") not in (None, []):
        clean["document_ids"] = _ids(data, "document_ids")
    if data.get("collection") is not None:
        collection = data["collection"]
        if isinstance(collection, bool) or not isinstance(collection, int) or collection <= 0:
            raise ItemInvalid("collection must be a collection id (integer)")
        clean["collection"] = collection
    try:
        check_request(clean["instruction"], clean["target_words"])
    except ValueError as err:
        raise ItemInvalid(str(err)) from None
    return clean


def write_sources(item, team) -> list:
    """A write item's sources now, read with the access of the batch's key (or user): its
    documents, and its collection's ready documents at the time it runs (apps.collections
    .access). A source no longer readable is refused like one that no longer exists."""
    data = item.input
    ids, collection = data.get("document_ids") or [], data.get("collection")
    if not ids and collection is None:
        return []
    who = item.batch.api_key or item.batch.created_by
    readable = access.readable_documents(team, who)
    documents = ready_documents(team, ids, readable)
    if collection is not None:
        if not access.readable_collections(team, who).filter(pk=collection).exists():
            raise ValueError(f"Collection {collection} no longer exists or is no longer "
                             "readable by this batch's key.")
        documents += list(without_text(readable.filter(
            filing__collection_id=collection, status=DocStatus.READY).exclude(pk__in=ids)
            .order_by("title")))
    return documents


def run_write(item, team, progress) -> dict:
    data, backend = item.input, get_backend()
    documents = write_sources(item, team)
    library = writing.library_of(team, documents, data["instruction"], topics=True)
    plan = make_plan(backend, data["instruction"], data["target_words"],
                     topics=library.topics if library else None)
    result = write_document(data["instruction"], plan, backend=backend, done_sections={},
                            save_section=lambda index, section: None, progress=progress,
                            style=data.get("style"), library=library)
    progress.add_tokens(result.usage.prompt_tokens, result.usage.completion_tokens)
    out = {"text": result.text, "words": result.words, "outline": plan.outline(),
           "sections": len(result.sections), "seconds": round(result.seconds, 2),
           "usage": {"prompt_tokens": result.usage.prompt_tokens,
                     "completion_tokens": result.usage.completion_tokens}}
    if library is not None:  # the text with its markers [n] and what each one cites
        texts, refs = number_citations((s.text, s.citations) for s in result.sections)
        by_id = {d.pk: d for d in documents}
        out["text"] = join_sections({s.index: t for s, t in zip(result.sections, texts,
                                                                 strict=True)},
                                    plan.requirements.separator)
        out["references"] = [
            {"n": r.number, "document_id": r.document_id, "title": by_id[r.document_id].title,
             "page": by_id[r.document_id].page_of(r.start), "start": r.start, "end": r.end,
             "quote": r.quote[:QUOTE_CHARS]} for r in refs]
        out["documents"] = [d.pk for d in documents]
    return out


register(ItemKind("write", ("instruction", "target_words", "style", "document_ids",
                            "collection"), ("instruction",), validate_write, run_write,
                  document_ids=lambda data: data.get("document_ids", []),
                  collection_id=lambda data: data.get("collection")))
