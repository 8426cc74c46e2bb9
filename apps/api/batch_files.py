"""A batch from what a person pastes or uploads (the batch page): questions one per line, or
a CSV / JSONL file of questions (× documents) or of compress / write items, turned into the
same request the API takes (`services.submit_batch`).

Everything is checked before anything runs, each problem said once with its line: a file
that is not UTF-8, a missing or unknown column, more rows than API_BATCH_MAX_ITEMS (counted
without building the items), a document id or title this team does not have. Cell text is
kept as it is (a cell starting with "=" is a question like any other); the exports escape
it (apps/api/batch_results.py).
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.conf import settings

from apps.api.items import ItemInvalid, check_fields, get_item_kind
from apps.api.services import MAX_REPORTED_ERRORS
from apps.documents.models import DocStatus

DOCUMENT_COLUMNS = ("document_id", "document")
QA_COLUMNS = ("question", *DOCUMENT_COLUMNS)
# A CSV cell is text; these item fields are numbers (JSONL gives them typed already).
NUMBER_FIELDS = {"document_id": int, "target_tokens": int, "target_words": int, "ratio": float}
DELIMITERS = (",", ";", "\t")


class BatchInputError(ValueError):
    """What is wrong with the input, one message per problem (shown as a list)."""

    def __init__(self, messages: list[str] | str):
        self.messages = [messages] if isinstance(messages, str) else list(messages)
        super().__init__("; ".join(self.messages))


@dataclass(frozen=True)
class Upload:
    name: str
    data: bytes


@dataclass
class Table:
    columns: list[str]
    rows: list[tuple[int, dict]]  # (line number, the row's non-empty cells)
    total: int = 0  # rows in the input, also those past the limit (not kept)


@dataclass
class Request:
    """What the form gives: the kind, pasted text and/or a file, the picked documents."""

    kind: str
    text: str = ""
    upload: Upload | None = None
    document_ids: list[int] = field(default_factory=list)
    each_document: bool = False
    strategy: str = "auto"
    name: str = ""
    options: dict = field(default_factory=dict)  # the strategy's options (answer_tokens)


# -- Reading the input -------------------------------------------------------------------------


def decode(data: bytes) -> str:
    """UTF-8 text (a BOM is dropped), or a message naming the line with the first bad byte."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise BatchInputError("The file is UTF-16 text; save it as UTF-8 (in a spreadsheet: "
                              "“CSV UTF-8”) and upload it again.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise BatchInputError(
            f"The file is not UTF-8 text: line {line} has a byte (0x{data[err.start]:02X}) "
            "that UTF-8 does not allow (Latin-1 or Windows-1252 perhaps). Save it as UTF-8 "
            "(in a spreadsheet: “CSV UTF-8”) and upload it again.") from None


def is_jsonl(name: str, text: str) -> bool:
    lower = name.lower()
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        return True
    if lower.endswith((".csv", ".tsv", ".txt")):
        return False
    return text.lstrip().startswith("{")


def read_table(text: str, name: str = "") -> Table:
    """The rows of a CSV (header row first) or JSONL text; at most API_BATCH_MAX_ITEMS rows
    are kept, the rest only counted."""
    return _read_jsonl(text) if is_jsonl(name, text) else _read_csv(text)


def _limit() -> int:
    return settings.API_BATCH_MAX_ITEMS


def _read_csv(text: str) -> Table:
    lines = text.splitlines()
    header = next((line for line in lines if line.strip()), "")
    delimiter = max(DELIMITERS, key=header.count) if header else ","
    reader = csv.reader(lines, delimiter=delimiter)
    table, limit = Table([], []), _limit()
    try:
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            if not table.columns:
                table.columns = [c.strip().lower() for c in cells]
                _check_header(table.columns)
                continue
            table.total += 1
            if table.total > limit:  # past the limit rows are only counted, not read
                table.total += sum(1 for rest in reader if any(rest))
                break
            if len(cells) > len(table.columns) and any(
                    c.strip() for c in cells[len(table.columns):]):
                raise BatchInputError(f"Line {reader.line_num} has {len(cells)} cells; the "
                                      f"header row names {len(table.columns)} columns.")
            row = {col: cell.strip() for col, cell in zip(table.columns, cells, strict=False)
                   if col and cell.strip()}
            table.rows.append((reader.line_num, row))
    except csv.Error as err:
        raise BatchInputError(f"Line {reader.line_num} is not valid CSV: {err}.") from None
    return table


def _check_header(columns: list[str]) -> None:
    seen = set()
    for column in columns:
        if column in seen:
            raise BatchInputError(f"The column “{column}” appears twice in the header row.")
        if column:
            seen.add(column)


def _read_jsonl(text: str) -> Table:
    table, columns, limit = Table([], []), {}, _limit()
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        table.total += 1
        if table.total > limit:
            continue  # counted only: the message says how many there are
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as err:
            raise BatchInputError(f"Line {line} is not valid JSON: {err.msg}.") from None
        if not isinstance(row, dict):
            raise BatchInputError(f"Line {line} must be a JSON object ({{\"question\": …}}), "
                                  f"not {type(row).__name__}.")
        row = {str(k).strip().lower(): v for k, v in row.items() if v not in (None, "", [])}
        columns.update(dict.fromkeys(row))
        table.rows.append((line, row))
    table.columns = list(columns)
    return table


def check_rows(table: Table, what: str = "rows") -> None:
    if table.total > _limit():
        raise BatchInputError(
            f"The input has {table.total:,} {what}; a batch holds at most {_limit():,} items "
            "(API_BATCH_MAX_ITEMS). Split it into smaller batches.")
    if not table.rows:
        raise BatchInputError(f"The input has no {what}.")


def _pasted_questions(text: str) -> Table:
    table, limit = Table(["question"], []), _limit()
    for line, raw in enumerate(text.splitlines(), start=1):
        if raw.strip():
            table.total += 1
            if table.total <= limit:
                table.rows.append((line, {"question": raw.strip()}))
    return table


# -- Documents ---------------------------------------------------------------------------------


class Documents:
    """The team's documents by id and by title, read once (no text)."""

    def __init__(self, team, documents=None):
        """``documents``: those the person may read (apps.collections.access); the team's."""
        library = team.documents.all() if documents is None else documents
        self.by_id = {d.pk: d for d in library.only("pk", "title", "status")}
        self.by_title: dict[str, list] = {}
        for d in self.by_id.values():
            self.by_title.setdefault(d.title.strip().casefold(), []).append(d)

    def find(self, row: dict) -> int | None:
        """The document a row names (`document_id`, or `document`: a title or an id), None
        when it names none; ItemInvalid says why one named is not usable."""
        if "document_id" in row and "document" in row:
            raise ItemInvalid("give document_id or document, not both")
        if "document_id" in row:
            value = row["document_id"]
            number = _number("document_id", value, int) if isinstance(value, str) else value
            if isinstance(number, bool) or not isinstance(number, int) or number not in self.by_id:
                raise ItemInvalid(f"unknown document id {value}; this team has no such document")
            return self._ready(self.by_id[number])
        if "document" in row:
            value = str(row["document"]).strip()
            found = self.by_title.get(value.casefold(), [])
            if len(found) > 1:
                raise ItemInvalid(f"{len(found)} documents are titled “{value}”; use their "
                                  "document_id instead")
            if not found and value.isdigit() and int(value) in self.by_id:
                found = [self.by_id[int(value)]]
            if not found:
                raise ItemInvalid(f"no document titled “{value}” in this team's library")
            return self._ready(found[0])
        return None

    @staticmethod
    def _ready(document) -> int:
        if document.status != DocStatus.READY:
            raise ItemInvalid(f"document “{document.title}” is not ready "
                              f"({document.get_status_display().lower()})")
        return document.pk


def _number(name: str, value: str, kind: type):
    try:
        return kind(value)
    except ValueError:
        noun = "a whole number" if kind is int else "a number"
        raise ItemInvalid(f"{name} must be {noun}, not “{value}”") from None


# -- The request -------------------------------------------------------------------------------


def _reported(errors: list[str]) -> list[str]:
    more = len(errors) - MAX_REPORTED_ERRORS
    return errors[:MAX_REPORTED_ERRORS] + ([f"… and {more:,} more"] if more > 0 else [])


def _input_table(request: Request, *, questions: bool) -> Table:
    if request.upload is not None and request.text.strip():
        raise BatchInputError("Paste the input or upload a file, not both.")
    if request.upload is not None:
        if len(request.upload.data) > settings.API_JSON_MAX_BYTES:  # read no further
            raise BatchInputError(f"The file is larger than {settings.API_JSON_MAX_BYTES:,} "
                                  "bytes (API_JSON_MAX_BYTES); split it into smaller batches.")
        return read_table(decode(request.upload.data), request.upload.name)
    if questions:
        return _pasted_questions(request.text)
    return read_table(request.text)


def _check_columns(table: Table, allowed: tuple[str, ...], needed: tuple[str, ...],
                   kind: str) -> None:
    columns = [c for c in table.columns if c]
    if needed and not set(needed) & set(columns):
        wanted = " or ".join(f"“{n}”" for n in needed)
        raise BatchInputError(
            f"The file has no {wanted} column (its columns: {', '.join(columns) or 'none'}). "
            f"A {kind} batch's first row names its columns: {', '.join(allowed)}.")
    unknown = [c for c in columns if c not in allowed]
    if unknown:
        raise BatchInputError(f"Unknown column(s) {', '.join(unknown)}; a {kind} batch takes "
                              f"{', '.join(allowed)}.")


def qa_spec(team, request: Request, library=None) -> dict:
    """Questions (pasted, or a file's `question` column) asked of the picked documents
    (together, or each apart) or of the document a row names."""
    table = _input_table(request, questions=True)
    check_rows(table, "questions")
    _check_columns(table, QA_COLUMNS, ("question",), "qa")
    documents = Documents(team, library)
    picked = list(dict.fromkeys(request.document_ids))
    for pk in picked:  # the form offers ready ones; one may have gone since
        if pk not in documents.by_id:
            raise BatchInputError(f"Unknown document id {pk}; this team has no such document.")
    per_row = len(picked) if request.each_document else 1
    errors, named = [], []
    for line, row in table.rows:
        try:
            named.append(documents.find(row))
        except ItemInvalid as err:
            errors.append(f"Line {line}: {err}.")
    if errors:
        raise BatchInputError(_reported(errors))
    unnamed = named.count(None)
    if unnamed and not picked:
        raise BatchInputError("Pick at least one document (or give a document_id or document "
                              "column in the file).")
    total = len(named) - unnamed + unnamed * per_row  # arithmetic: nothing built yet
    if total > _limit():
        raise BatchInputError(
            f"The batch would have {total:,} items ({unnamed:,} questions × {per_row:,} "
            f"documents); a batch holds at most {_limit():,} (API_BATCH_MAX_ITEMS).")
    kind, items = get_item_kind("qa"), []
    for (line, row), doc in zip(table.rows, named, strict=True):
        if doc is not None:
            groups = [[doc]]
        else:
            groups = [[d] for d in picked] if request.each_document else [picked]
        for ids in groups:
            item = {"question": row.get("question", ""), "document_ids": ids,
                    "strategy": request.strategy}
            if request.options:
                item["options"] = request.options
            try:
                kind.validate(check_fields(kind, item))
            except ItemInvalid as err:
                errors.append(f"Line {line}: {err}.")
                break
            items.append(item)
    if errors:
        raise BatchInputError(_reported(errors))
    return {"kind": "qa", "name": request.name, "items": items}


def items_spec(team, request: Request, library=None) -> dict:
    """compress / write items, one per row of a CSV or JSONL text (pasted or uploaded),
    with the item's own fields as columns (`document`: a title, for document_id)."""
    kind = get_item_kind(request.kind)
    table = _input_table(request, questions=False)
    check_rows(table, "rows")
    allowed = (*kind.fields, "document") if "document_id" in kind.fields else kind.fields
    needed = kind.required or tuple(c for c in allowed if c in ("text", *DOCUMENT_COLUMNS))
    _check_columns(table, allowed, needed, kind.name)
    documents = Documents(team, library) if "document_id" in kind.fields else None
    errors, items = [], []
    for line, row in table.rows:
        try:
            item = dict(_typed(row))
            if documents is not None:
                doc = documents.find(item)
                item.pop("document", None)
                if doc is not None:
                    item["document_id"] = doc
            kind.validate(check_fields(kind, item))
            items.append(item)
        except ItemInvalid as err:
            errors.append(f"Line {line}: {err}.")
    if errors:
        raise BatchInputError(_reported(errors))
    return {"kind": kind.name, "name": request.name, "items": items}


def _typed(row: dict) -> Iterator[tuple[str, object]]:
    for name, value in row.items():
        kind = NUMBER_FIELDS.get(name)
        yield name, _number(name, value, kind) if kind and isinstance(value, str) else value


def batch_spec(team, request: Request, library=None) -> dict:
    """The API request for this input; BatchInputError (every message) before anything is
    created. ``library``: the documents the person may read (default: the team's)."""
    if request.kind == "qa":
        return qa_spec(team, request, library)
    try:
        get_item_kind(request.kind)
    except ItemInvalid as err:
        raise BatchInputError(str(err)) from None
    return items_spec(team, request, library)
