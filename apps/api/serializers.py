from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.api.items import QA_STRATEGIES, item_kinds
from apps.api.models import Batch, BatchItem
from apps.documents.models import DocStatus, Document


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know instead of silently dropping them."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: [f"Unknown field. Allowed: {', '.join(self.fields)}."]
                     for name in unknown})
        return super().to_internal_value(data)


class TeamSerializer(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    role = serializers.CharField(help_text="Your role, or “api-key” for a key's own team.")


class DocumentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Document
        fields = ["id", "title", "original_name", "kind", "size_bytes", "sha256", "status",
                  "error", "error_code", "pages", "words", "tokens", "chunk_count",
                  "created_at", "ingested_at"]
        read_only_fields = fields


class DocumentUploadSerializer(StrictSerializer):
    file = serializers.FileField(help_text="PDF, DOCX, HTML, Markdown or plain text.")


class DocumentFilterSerializer(StrictSerializer):
    status = serializers.ChoiceField(DocStatus.values, required=False)
    kind = serializers.CharField(required=False, max_length=20)
    q = serializers.CharField(required=False, max_length=200,
                              help_text="Words in the title (case-insensitive).")
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
        child=serializers.JSONField(), required=False, max_length=100_000,
        help_text="Item inputs. qa: {question, document_ids, strategy?, options?}; compress: "
                  "{text | document_id, ratio | target_tokens, question?, method?}; write: "
                  "{instruction, target_words?, style?}.")
    questions = serializers.ListField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False), required=False,
        max_length=100_000, help_text="qa shorthand: one item per question.")
    document_ids = serializers.ListField(child=serializers.IntegerField(min_value=1),
                                         required=False, max_length=1000,
                                         help_text="qa: documents for items that give none.")
    each_document = serializers.BooleanField(
        required=False, help_text="qa shorthand: one item per question × document.")
    strategy = serializers.ChoiceField(QA_STRATEGIES, required=False)
    options = serializers.DictField(required=False, child=serializers.JSONField())
    webhook_url = serializers.URLField(required=False, max_length=500)
    webhook_secret = serializers.CharField(required=False, min_length=16, max_length=200,
                                           help_text="HMAC key; made for you when left out.")


class BatchSerializer(serializers.ModelSerializer):
    done = serializers.IntegerField(read_only=True)
    percent = serializers.SerializerMethodField()
    webhook_secret = serializers.SerializerMethodField(
        help_text="Only in the response that created the batch.")

    class Meta:
        model = Batch
        fields = ["id", "kind", "name", "status", "total", "done", "succeeded", "failed",
                  "cancelled", "percent", "webhook_url", "webhook_secret", "created_at",
                  "finished_at"]
        read_only_fields = fields

    def get_percent(self, batch) -> int:
        return round(100 * batch.done / batch.total) if batch.total else 100

    def get_webhook_secret(self, batch) -> str | None:
        return batch.webhook_secret if self.context.get("show_secret") else None


class ItemProgressSerializer(serializers.Serializer):
    current = serializers.IntegerField()
    total = serializers.IntegerField()
    message = serializers.CharField(allow_blank=True)


class BatchItemSerializer(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()
    result = serializers.JSONField(allow_null=True)
    input = serializers.JSONField()

    class Meta:
        model = BatchItem
        fields = ["index", "kind", "status", "input", "result", "error", "progress",
                  "started_at", "finished_at"]
        read_only_fields = fields

    @extend_schema_field(ItemProgressSerializer)
    def get_progress(self, item) -> dict:
        from apps.api.services import item_progress

        return item_progress(item)


class ResultsFilterSerializer(StrictSerializer):
    status = serializers.ChoiceField(["queued", "running", "succeeded", "failed", "cancelled"],
                                     required=False)
    page = serializers.IntegerField(required=False, min_value=1)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=500)
