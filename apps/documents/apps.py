from django.apps import AppConfig


class DocumentsConfig(AppConfig):
    name = "apps.documents"
    label = "documents"

    def ready(self) -> None:
        from apps.documents import runners  # noqa: F401 - registers the ingest job kind
