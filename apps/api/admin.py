from django.contrib import admin

from apps.api.models import ApiKey, Batch


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "name", "team", "scopes", "last_used_at", "revoked_at"]
    search_fields = ["prefix", "name", "team__name"]
    raw_id_fields = ["team", "created_by"]
    readonly_fields = ["prefix", "secret_hash", "created_at", "last_used_at"]


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "team", "status", "total", "succeeded", "failed", "cancelled",
                    "created_at", "finished_at"]
    list_filter = ["status", "kind"]
    raw_id_fields = ["team", "created_by", "api_key", "webhook_job"]
    exclude = ["webhook_secret"]
