from django.apps import AppConfig

from apps.core.engine import engine_config
from workers.config import install


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"

    def ready(self) -> None:
        install(engine_config)  # the engine's configuration comes from the settings
