from django.apps import AppConfig


class CompressConfig(AppConfig):
    name = "apps.compress"
    label = "compress"

    def ready(self) -> None:
        from apps.compress import runners  # noqa: F401 - registers the "compress" job kind
