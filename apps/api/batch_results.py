"""A batch's results as a table (the page, CSV, XLSX; JSONL is the API's item record).

Model output and uploaded cells are untrusted: a cell starting with = + - @ is escaped in
the CSV and the XLSX (apps.teams.usage.safe_cell), so a spreadsheet shows it as text and
never runs it as a formula.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

from apps.api import services
from apps.api.models import Batch, BatchItem
from apps.teams.usage import safe_cell

COLUMNS = ("index", "status", "input", "documents", "strategy", "output", "citations",
           "seconds", "prompt_tokens", "completion_tokens", "error")
XLSX_CELL_CHARS = 32_000  # Excel holds at most 32,767 characters in a cell
PAGE = 500


def items_in_pages(batch: Batch) -> Iterator[BatchItem]:
    """Every item in index order, read PAGE at a time (a batch may hold thousands)."""
    last = -1
    while rows := list(batch.items.filter(index__gt=last).select_related("job")
                       .order_by("index")[:PAGE]):
        yield from rows
        last = rows[-1].index


def item_input(item: BatchItem) -> str:
    data = item.input or {}
    return data.get("question") or data.get("instruction") or data.get("text") or ""


def item_output(item: BatchItem) -> str:
    result = item.result or {}
    return result.get("answer") or result.get("text") or ""


def item_documents(item: BatchItem) -> list[int]:
    data = item.input or {}
    return data.get("document_ids") or ([data["document_id"]] if "document_id" in data else [])


def item_seconds(item: BatchItem) -> float | None:
    if item.started_at and item.finished_at:
        return round((item.finished_at - item.started_at).total_seconds(), 1)
    return None


def item_tokens(item: BatchItem) -> tuple[int, int]:
    """Read and written tokens: the job's count (every kind records it), else the result's."""
    if item.job is not None and (item.job.tokens_in or item.job.tokens_out):
        return item.job.tokens_in, item.job.tokens_out
    usage = (item.result or {}).get("usage") or {}
    return usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)


def citation_text(citation: dict) -> str:
    return f"[{citation['n']}] {citation['title']}, p. {citation['page']}: “{citation['quote']}”"


def item_row(item: BatchItem) -> dict:
    tokens = item_tokens(item)
    citations = (item.result or {}).get("citations") or []
    return {
        "index": item.index, "status": item.status, "input": item_input(item),
        "documents": " ".join(map(str, item_documents(item))),
        "strategy": (item.result or {}).get("strategy") or (item.input or {}).get("strategy",
                                                                                   ""),
        "output": item_output(item), "citations": "\n".join(map(citation_text, citations)),
        "seconds": item_seconds(item), "prompt_tokens": tokens[0],
        "completion_tokens": tokens[1], "error": item.error,
    }


def results_csv(batch: Batch) -> str:
    out = io.StringIO()
    out.write("\ufeff")  # a BOM: Excel reads the file as UTF-8 only with one
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for item in items_in_pages(batch):
        row = item_row(item)
        writer.writerow([safe_cell(row[c]) for c in COLUMNS])
    return out.getvalue()


def results_jsonl(batch: Batch) -> Iterator[str]:
    """The API's line per item (services.item_record)."""
    for item in items_in_pages(batch):
        yield json.dumps(services.item_record(item), ensure_ascii=False) + "\n"


def results_xlsx(batch: Batch) -> bytes:
    from openpyxl import Workbook  # only the download needs it
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    def cell(value):
        if isinstance(value, str):
            value = ILLEGAL_CHARACTERS_RE.sub("", value)  # control characters XLSX refuses
            if len(value) > XLSX_CELL_CHARS:
                value = value[:XLSX_CELL_CHARS] + " … (cut: the JSONL has it whole)"
        return safe_cell(value)

    book = Workbook(write_only=True)
    sheet = book.create_sheet(f"Batch {batch.pk}")
    sheet.append(list(COLUMNS))
    for item in items_in_pages(batch):
        row = item_row(item)
        sheet.append([cell(row[c]) for c in COLUMNS])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


