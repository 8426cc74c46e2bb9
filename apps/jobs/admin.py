from django.contrib import admin

from apps.jobs.models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "team", "status", "progress_current", "progress_total",
                    "attempts", "created_at", "finished_at"]
    list_filter = ["status", "kind", "queue"]
    search_fields = ["id", "title", "celery_task_id", "team__name"]
    raw_id_fields = ["team", "created_by"]
    readonly_fields = ["created_at", "enqueued_at", "started_at", "finished_at", "heartbeat_at"]
