"""`manage.py stack start|stop|status`: the embedded Postgres and Redis (apps/stack.py).

`start` is the step every other command that needs the database takes by itself (manage.py);
run it alone before starting a process outside manage.py on the embedded stack (a Celery
worker or uvicorn by hand). `stop` stops both, whoever started them."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from apps import stack


class Command(BaseCommand):
    help = "Start, stop or show the embedded Postgres and Redis."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["start", "stop", "status"])

    def handle(self, *args, action: str, **options):
        if action == "start":
            started = stack.start_for(settings)
            self.stdout.write(f"started: {', '.join(started) or 'nothing (already running)'}")
        elif action == "stop":
            stopped = stack.stop_all()
            self.stdout.write(f"stopped: {', '.join(stopped) or 'nothing (not running)'}")
        if not settings.EMBEDDED_SERVICES:
            self.stdout.write("DATABASE_URL and REDIS_URL are set: nothing here is embedded.")
        self.stdout.write(f"database: {settings.DATABASE_URL}\nbroker:   {settings.REDIS_URL}")
        running = {"postgres": stack.postgres_running(),
                   "redis": stack.redis_alive(stack.redis_paths().socket)}
        for name in settings.EMBEDDED_SERVICES:
            self.stdout.write(f"embedded {name}: {'running' if running[name] else 'stopped'}")
