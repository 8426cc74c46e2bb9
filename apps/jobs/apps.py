from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "apps.jobs"
    label = "jobs"

    def ready(self) -> None:
        # The Celery app must exist in every process that enqueues (web, tests, workers),
        # and the runners register the job kinds.
        import workers.celery  # noqa: F401
        from apps.jobs import runners  # noqa: F401
