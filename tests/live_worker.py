"""A real Celery worker process for the tests, on the test database and test broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.db import connection

from apps import stack
from workers.queues import JOB_QUEUES


def test_database_url() -> str:
    """settings.DATABASE_URL with the database name of the test database."""
    parts = urlsplit(settings.DATABASE_URL)
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


class LiveWorker:
    """A worker as `make run` starts them: by default the job worker (every job queue,
    interactive first, prefork children, where time limits and the memory cap hold).
    `beat_schedule` (a file path) adds the beat scheduler, as on the control worker."""

    def __init__(self, *, env: dict | None = None, queues: str = ",".join(JOB_QUEUES),
                 broker_url: str | None = None, pool: str = "prefork", concurrency: int = 2,
                 beat_schedule: str | None = None):
        self.name = f"test-{uuid.uuid4().hex[:8]}@%h"
        self.queues = queues
        self.options = ["--pool", pool, "-c", str(concurrency)]
        if beat_schedule:
            self.options += ["-B", "-s", beat_schedule]
        self.extra_env = env or {}
        self.broker_url = broker_url or settings.CELERY_BROKER_URL
        self.proc: subprocess.Popen | None = None
        self.lines: deque[str] = deque(maxlen=400)
        self._ready = threading.Event()

    def start(self, timeout: float = 60) -> LiveWorker:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "apps.settings_test",
            "DATABASE_URL": test_database_url(),
            "REDIS_URL": self.broker_url,
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        self._ready.clear()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers.celery", "worker",
             "-Q", self.queues, *self.options, "-n", self.name,
             "--without-gossip", "--without-mingle", "-l", "INFO"],
            env=env, cwd=stack.BASE_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(timeout):
            self.stop()
            raise RuntimeError("worker did not start:\n" + self.log)
        return self

    def _read(self) -> None:
        assert self.proc and self.proc.stdout
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())
            if " ready." in line:
                self._ready.set()

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole worker (no warm shutdown, no acknowledgement)."""
        if self.alive:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.alive:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@contextmanager
def empty_broker():
    """The test broker's Redis database, emptied before and after (yields its client)."""
    from workers.celery import app

    with app.connection_for_write() as conn:
        client = conn.default_channel.client
        client.flushdb()
        yield client
        client.flushdb()


def wait_for(predicate, timeout: float = 30, interval: float = 0.1, message: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message or predicate}")


def settled_document(pk):
    """The document and its ingest job have both reached an end state (else None)."""
    from apps.documents.models import DocStatus, Document

    doc = Document.objects.select_related("job").get(pk=pk)
    done = doc.status in (DocStatus.READY, DocStatus.FAILED) and doc.job.is_finished
    return doc if done else None
