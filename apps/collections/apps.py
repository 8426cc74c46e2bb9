from django.apps import AppConfig


class CollectionsConfig(AppConfig):
    name = "apps.collections"
    label = "collections"

    def ready(self) -> None:
        from apps.collections import signals  # noqa: F401 - connects the receivers
