from django.apps import AppConfig


class WritingConfig(AppConfig):
    name = "apps.writing"
    label = "writing"

    def ready(self) -> None:
        from apps.writing import runners  # noqa: F401 - registers the writing job kinds
