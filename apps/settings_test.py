"""Settings for the test suite: a separate Redis database so that a running `make run`
worker never takes the tests' messages, fast password hashing, a temporary MEDIA_ROOT."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from apps import stack
from apps.settings import *  # noqa: F403
from apps.settings import CACHES, DATABASES, REDIS_URL
from workers.events import redis_py_url

# Parallel test runs on one machine (several checkouts or agents) each set their own
# TEST_REDIS_DB and TEST_DB_SUFFIX so they never share a broker database or test database.
TEST_REDIS_DB = int(os.environ.get("TEST_REDIS_DB", "15"))
DATABASES["default"]["TEST"] = {
    "NAME": f"test_{DATABASES['default']['NAME']}{os.environ.get('TEST_DB_SUFFIX', '')}"
}


def _with_db(url: str, db: int) -> str:
    if url.startswith("redis+socket://"):
        return url.split("?", 1)[0] + f"?virtual_host={db}"
    base = url.rstrip("/").rsplit("/", 1)
    return f"{base[0]}/{db}" if base[-1].isdigit() else f"{url.rstrip('/')}/{db}"


REDIS_URL = _with_db(REDIS_URL, TEST_REDIS_DB)
CELERY_BROKER_URL = REDIS_URL
CACHES["default"]["LOCATION"] = redis_py_url(REDIS_URL)
# Ids repeat from run to run (fresh test database), so each test session counts throttles
# and login failures under its own prefix; the processes it starts inherit it (conftest).
CACHES["default"]["KEY_PREFIX"] = (os.environ.get("TEST_CACHE_PREFIX")
                                   or f"test-{uuid.uuid4().hex[:12]}")
# The test client and the browser tests' live server speak plain http.
SECURE_SSL_REDIRECT = SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# A worker process started by the tests gets the test process's MEDIA_ROOT in its environment;
# each test has a folder of its own (conftest), this is for other users of these settings.
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT") or stack.var_dir() / "test-media")
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
DEMO_JOB_STEP_DELAY = float(os.environ.get("DEMO_JOB_STEP_DELAY", "0"))  # workers set it
ACCOUNT_RATE_LIMITS = False
