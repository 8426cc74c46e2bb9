"""The Celery app (``celery -A workers.celery``). Configuration comes from Django settings
(CELERY_* names); the tasks, being adapters over the jobs service, live in
``apps/jobs/tasks.py`` and are found by name, so nothing under ``workers`` imports ``apps``."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apps.settings")

app = Celery("scriptorium")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["apps.jobs"], related_name="tasks")
