from __future__ import annotations

from datetime import datetime
from functools import cache

from django.db.models import Manager
from drf_spectacular.utils import extend_schema_field
from rest_framework import ISO_8601, serializers
from rest_framework.settings import api_settings

from apps.api.items import item_kinds
from apps.api.models import Batch, BatchItem
from apps.api.services import BatchRefused, check_count, item_progress
from apps.documents.models import DocStatus, Document
from workers.qa.options import STRATEGY_NAMES, options_help


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know instead of silently dropping them."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {
                        name: [f"Unknown field. Allowed: {', '.join(self.fields)}."]
                        for name in unknown
                    }
                )
        return super().to_internal_value(data)


class TeamSerializer(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    role = serializers.CharField(help_text="Your role, or “api-key” for a key's own team.")


class FlatListSerializer(serializers.ListSerializer):
    """A list of a serializer whose fields are plain attributes (no nesting, no methods): each
    row through the fields' own converters, built once per process. DRF builds a
    ModelSerializer's fields anew for every list and then walks them per row, which cost
    twice the conversion itself on a page of 20 (same output; the schema reads the child).

    Rows from ``.values()`` hold the database's values of the model's own columns, so a
    field whose DRF conversion gives such a value back unchanged (an integer to an
    IntegerField, text to a CharField or a ChoiceField of text choices, JSON to a JSONField)
    is copied, and a time is written as DRF writes it with the time zone read once per list
    instead of once per value (``row_converters``)."""

    def to_representation(self, data):
        rows = data.all() if isinstance(data, Manager) else data
        if rows and isinstance(rows[0], dict):  # .values() rows (the view chose the columns)
            names, converted = row_converters(type(self.child))
            out = []
            for row in rows:
                item = {name: row[name] for name in names}
                for name, convert in converted:
                    if (value := item[name]) is not None:
                        item[name] = convert(value)
                out.append(item)
            return out
        # A nullable field may be an annotation a plain row lacks: None, as DRF gives.
        convert = flat_converters(type(self.child))
        return [
            {
                name: None if (value := getattr(row, name, *missing)) is None else to_text(value)
                for name, to_text, missing in convert
            }
            for row in rows
        ]


@cache
def flat_converters(serializer_class) -> tuple:
    fields = list(serializer_class()._readable_fields)
    nested = [f.field_name for f in fields if f.source_attrs != [f.field_name]]
    if nested:
        raise TypeError(f"{serializer_class.__name__}: not flat ({', '.join(nested)})")
    return tuple(
        (f.field_name, f.to_representation, (None,) if f.allow_null else ()) for f in fields
    )


def row_converters(serializer_class) -> tuple[tuple[str, ...], list]:
    """The fields' names, and (name, convert) for those whose database value DRF changes;
    a time's converter holds the time zone of this moment (a request may activate one)."""
    names, fields = _row_fields(serializer_class)
    return names, [
        (name, _time_converter(field) if time else field.to_representation)
        for name, field, time in fields
    ]


@cache
def _row_fields(serializer_class) -> tuple[tuple[str, ...], tuple]:
    fields = list(serializer_class()._readable_fields)
    flat_converters(serializer_class)  # refuses a nested serializer
    return tuple(f.field_name for f in fields), tuple(
        (f.field_name, f, type(f) is serializers.DateTimeField)
        for f in fields
        if not _gives_back_a_column_value(f)
    )


def _gives_back_a_column_value(field) -> bool:
    kind = type(field)
    if kind is serializers.IntegerField or kind is serializers.CharField:
        return True  # int(an integer), str(a text)
    if kind is serializers.BigIntegerField:
        return not getattr(field, "coerce_to_string", api_settings.COERCE_BIGINT_TO_STRING)
    if kind is serializers.ChoiceField:
        return all(text == value for text, value in field.choice_strings_to_values.items())
    if kind is serializers.JSONField:
        return not field.binary
    return False


def _time_converter(field):
    """DRF's DateTimeField.to_representation for an aware datetime in ISO 8601 (its
    default), the field's time zone read once; anything else goes to DRF."""
    if getattr(field, "format", api_settings.DATETIME_FORMAT) != ISO_8601:
        return field.to_representation
    zone = field.timezone if hasattr(field, "timezone") else field.default_timezone()
    if zone is None:
        return field.to_representation

    def convert(value):
        if type(value) is not datetime or value.utcoffset() is None:
            return field.to_representation(value)
        try:
            text = value.astimezone(zone).isoformat()
        except OverflowError:
            return field.to_representation(value)  # DRF's error
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    return convert


class DocumentSerializer(serializers.ModelSerializer):
    # Annotated by the views (DocumentView.readable): the serializer stays flat.
    collection = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        help_text="The collection's id; null: in no collection (open to the team).",
    )

    class Meta:
        model = Document
        list_serializer_class = FlatListSerializer
        fields = [
            "id",
            "title",
            "original_name",
            "kind",
            "size_bytes",
            "sha256",
            "status",
            "error",
            "error_code",
            "pages",
            "words",
            "tokens",
            "chunk_count",
            "language",
            "ocr_pages",
            "unreadable_pages",
            "slow_pages",
            "created_at",
            "ingested_at",
            "collection",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "language": {"help_text": "ISO 639-1 code detected at ingest; empty: unknown."},
            "ocr_pages": {"help_text": "Pages (1-based) whose text was read by OCR."},
            "unreadable_pages": {"help_text": "Pages neither a text layer nor OCR could read."},
            "slow_pages": {
                "help_text": "Those of the unreadable pages that OCR ran out of time on."
            },
        }


class DocumentUpdateSerializer(StrictSerializer):
    title = serializers.CharField(
        max_length=300,
        help_text="The document's title; it stays when the document is ingested again.",
    )


class QuestionEstimateSerializer(StrictSerializer):
    question = serializers.CharField(trim_whitespace=False, max_length=100_000)
    document_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), min_length=1, max_length=1000
    )


class DocumentUploadSerializer(StrictSerializer):
    file = serializers.FileField(
        help_text="PDF (scanned pages read by OCR), DOCX, EPUB, HTML, "
        "Markdown, plain text, or a PNG/JPEG/TIFF image (OCR)."
    )
    collection = serializers.IntegerField(
        required=False,
        help_text="A collection to upload into (write access needed); "
        "required for a key scoped to collections.",
    )


class DocumentFilterSerializer(StrictSerializer):
    status = serializers.ChoiceField(DocStatus.values, required=False)
    collection = serializers.CharField(
        required=False, max_length=20, help_text="A collection's id, or “none”."
    )
    kind = serializers.CharField(required=False, max_length=20)
    q = serializers.CharField(
        required=False, max_length=200, help_text="Words in the title (case-insensitive)."
    )
    page = serializers.IntegerField(required=False, min_value=1)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=500)


class PageTextSerializer(serializers.Serializer):
    document_id = serializers.IntegerField()
    page = serializers.IntegerField()
    pages = serializers.IntegerField()
    start = serializers.IntegerField(help_text="Character offset of the page in the text.")
    end = serializers.IntegerField()
    text = serializers.CharField()


class BatchCreateSerializer(StrictSerializer):
    kind = serializers.ChoiceField(item_kinds(), help_text="qa, compress or write.")
    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    items = serializers.ListField(
        child=serializers.JSONField(),
        required=False,
        max_length=100_000,
        help_text="Item inputs. qa: {question, document_ids, strategy?, options?}; compress: "
        "{text | document_id, ratio | target_tokens, question?, method?}; write: "
        "{instruction, target_words?, style?, document_ids?, collection?} (sources "
        "the key may read; a collection's documents are read when the item runs).",
    )
    questions = serializers.ListField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False),
        required=False,
        max_length=100_000,
        help_text="qa shorthand: one item per question.",
    )
    document_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        max_length=1000,
        help_text="qa: documents for items that give none.",
    )
    each_document = serializers.BooleanField(
        required=False, help_text="qa shorthand: one item per question × document."
    )
    strategy = serializers.ChoiceField(STRATEGY_NAMES, required=False)
    options = serializers.DictField(
        required=False, child=serializers.JSONField(), help_text=options_help()
    )
    webhook_url = serializers.URLField(required=False, max_length=500)
    webhook_secret = serializers.CharField(
        required=False,
        min_length=16,
        max_length=200,
        help_text="HMAC key; made for you when left out.",
    )

    def to_internal_value(self, data):
        # The item count first, by arithmetic on the raw lists: 10⁵ questions × 10³ documents
        # is refused before a single question is validated (let alone an item built).
        if isinstance(data, dict):
            each = data.get("each_document")
            each = isinstance(each, str | int) and each in serializers.BooleanField.TRUE_VALUES
            try:
                check_count({**data, "each_document": each})
            except BatchRefused as err:
                raise serializers.ValidationError(err.errors) from None
        return super().to_internal_value(data)


class BatchSerializer(serializers.ModelSerializer):
    done = serializers.IntegerField(read_only=True)
    percent = serializers.SerializerMethodField()
    webhook_secret = serializers.SerializerMethodField(
        help_text="Only in the response that created the batch."
    )

    class Meta:
        model = Batch
        fields = [
            "id",
            "kind",
            "name",
            "status",
            "total",
            "done",
            "succeeded",
            "failed",
            "cancelled",
            "percent",
            "webhook_url",
            "webhook_secret",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_percent(self, batch) -> int:
        return round(100 * batch.done / batch.total) if batch.total else 100

    def get_webhook_secret(self, batch) -> str | None:
        return batch.webhook_secret if self.context.get("show_secret") else None


class ItemProgressSerializer(serializers.Serializer):
    current = serializers.IntegerField()
    total = serializers.IntegerField()
    message = serializers.CharField(allow_blank=True)


QA_RESULT_SCHEMA = {
    "type": "object",
    "nullable": True,
    "description": (
        "The item's result (null until it succeeds). A qa item's result has the fields "
        "below; a compress item returns its engine's result. A write item returns `text`, "
        "`words`, `outline`, `sections`, `seconds` and `usage`; written from sources "
        "(`document_ids` or `collection`), its `text` carries numbered markers [n], "
        "`references` lists what each cites ({n, document_id, title, page, start, end, "
        "quote}: `quote` is the document's text[start:end]) and `documents` the ids of the "
        "documents it was written from."
    ),
    "properties": {
        "answer": {
            "type": "string",
            "description": "The answer text, free of prompt markup. "
            "When `abstained`, a sentence saying the documents don't appear to answer.",
        },
        "grounded": {
            "type": "boolean",
            "description": "Every statement of the answer is "
            "supported by a cited passage (names, numbers, dates found in it).",
        },
        "abstained": {
            "type": "boolean",
            "description": "The documents don't appear to "
            "answer the question: `citations` are the closest passages, not "
            "support. grounded and abstained both false: partly supported (the "
            "unsupported statements were removed) or not checked: not verified.",
        },
        "grounding": {
            "type": "object",
            "description": "The check: strictness, verdict "
            "(supported | partial | unsupported | unchecked), reasons, removed "
            "statements.",
        },
        "strategy": {"type": "string"},
        "reason": {"type": "string"},
        "citations": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "n": {"type": "integer"},
                    "title": {"type": "string"},
                    "document_id": {"type": "integer"},
                    "start": {"type": "integer"},
                    "end": {"type": "integer"},
                    "quote": {"type": "string"},
                    "page": {"type": "integer", "nullable": True},
                },
            },
        },
        "usage": {
            "type": "object",
            "properties": {
                "prompt_tokens": {"type": "integer"},
                "completion_tokens": {"type": "integer"},
            },
        },
    },
    "additionalProperties": True,
}


@extend_schema_field(QA_RESULT_SCHEMA)
class ItemResultField(serializers.JSONField):
    pass


class BatchItemSerializer(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()
    result = ItemResultField(allow_null=True)
    input = serializers.JSONField()

    class Meta:
        model = BatchItem
        fields = [
            "index",
            "kind",
            "status",
            "input",
            "result",
            "error",
            "progress",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    @extend_schema_field(ItemProgressSerializer)
    def get_progress(self, item) -> dict:
        return item_progress(item)


class ResultsFilterSerializer(StrictSerializer):
    status = serializers.ChoiceField(
        ["queued", "running", "succeeded", "failed", "cancelled"], required=False
    )
    page = serializers.IntegerField(required=False, min_value=1)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=500)
