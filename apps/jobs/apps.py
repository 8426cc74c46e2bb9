from django.apps import AppConfig

import workers.celery  # noqa: F401  (the Celery app must exist in every process that enqueues)


class JobsConfig(AppConfig):
    name = "apps.jobs"
    label = "jobs"

    def ready(self) -> None:
        # The runners register the job kinds; they import models, so not before the
        # app registry is ready.
        from apps.jobs import runners  # noqa: F401
