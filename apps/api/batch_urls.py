from django.urls import path, re_path

from apps.api import batch_pages as views

app_name = "batches"

urlpatterns = [
    path("", views.batch_list, name="list"),
    path("preview/", views.preview, name="preview"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/progress/", views.progress, name="progress"),
    path("<int:pk>/cancel/", views.cancel, name="cancel"),
    path("<int:pk>/retry/", views.retry, name="retry"),
    re_path(r"^(?P<pk>[0-9]+)/results\.(?P<fmt>csv|jsonl|xlsx)$", views.download,
            name="download"),
]
