"""Django settings, from the environment (django-environ; see .env.example) and `.env`.

Importing this module only reads: it starts no server, writes no file and leaves
os.environ as it is. With DATABASE_URL / REDIS_URL unset the URLs point at the embedded
Postgres and Redis under var/ (apps/stack.py), which the commands that need them start
explicitly (`stack.start_for`, taken by manage.py and the test session).
"""

from __future__ import annotations

import os
from datetime import timedelta

import environ

from apps import stack
from workers import queues
from workers.events import redis_py_url

BASE_DIR = stack.BASE_DIR


class _Env(environ.Env):
    # A copy: `.env` is read into it (under the process environment, which wins), so that
    # reading settings never changes os.environ.
    ENVIRON = dict(os.environ)


_Env.read_env(BASE_DIR / ".env", overwrite=False)
env = _Env()

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
# Development: the key under var/ (sessions survive restarts), made by `stack.start_for` the
# first time; empty until then, and Django refuses to sign anything without a key.
DEVELOPMENT_SECRET_KEY = not SECRET_KEY
if DEVELOPMENT_SECRET_KEY:
    if not DEBUG and env.bool("SCRIPTORIUM_REQUIRE_SECRET", default=False):
        raise RuntimeError("DJANGO_SECRET_KEY must be set in production")
    SECRET_KEY = stack.read_secret_key()

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "allauth",
    "allauth.account",
    "apps.core",
    "apps.accounts",
    "apps.teams",
    "apps.jobs",
    "apps.documents",
    "apps.chat",
    "apps.writing",
    "apps.compress",
    "apps.collections",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "apps.api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "apps.urls"
ASGI_APPLICATION = "apps.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.teams.context_processors.teams",
            ],
        },
    }
]

# -- Database and broker ---------------------------------------------------------------------
# External servers when their URL is set; else the embedded ones, which `stack.start_for`
# starts in the commands that need them.
_EXTERNAL_URLS = {"postgres": env.str("DATABASE_URL", default=""),
                  "redis": env.str("REDIS_URL", default="")}
EMBEDDED_SERVICES = [name for name, url in _EXTERNAL_URLS.items() if not url]
DATABASE_URL = _EXTERNAL_URLS["postgres"] or stack.postgres_url()
DATABASES = {"default": env.db_url_config(DATABASE_URL)}
# Each process keeps a pool of open connections (psycopg's pool; a new Postgres connection
# costs more than most requests). A request, or a worker's task thread, holds one from its
# first query to its end, so the maximum must cover a process's concurrent requests or task
# threads (compose's LLM worker runs 16); connections past min_size open only when needed.
# 0 turns the pool off (e.g. behind PgBouncer); then DB_CONN_MAX_AGE applies (Django refuses
# both at once).
DB_POOL_MAX_SIZE = env.int("DB_POOL_MAX_SIZE", default=20)
if DB_POOL_MAX_SIZE:
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": min(2, DB_POOL_MAX_SIZE), "max_size": DB_POOL_MAX_SIZE,
        "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),  # wait for a free connection
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = _EXTERNAL_URLS["redis"] or stack.redis_url()
# The cache holds the API throttles and allauth's login rate limits: in Redis they are shared
# by every process and survive restarts (a local-memory cache counts per process).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                      "LOCATION": redis_py_url(REDIS_URL), "KEY_PREFIX": "scriptorium"}}
# Live streams (SSE, apps/core/sse.py): open at once per person (all processes together) and
# per web process; past either the answer is 429.
SSE_MAX_STREAMS_PER_USER = env.int("SSE_MAX_STREAMS_PER_USER", default=10)
SSE_MAX_STREAMS_PER_PROCESS = env.int("SSE_MAX_STREAMS_PER_PROCESS", default=200)
# Requests a web process runs at once (apps/core/handler.py); the rest wait on its event loop.
# 0: no bound (a thread per request, all contending for one GIL and the connection pool).
WEB_REQUEST_SLOTS = env.int("WEB_REQUEST_SLOTS", default=4)
# A web process whose event loop has not beaten for this long is killed and started again by
# `manage.py serve` (apps/core/webserver.py); it beats once a second.
WEB_HEARTBEAT_TIMEOUT_S = env.float("WEB_HEARTBEAT_TIMEOUT_S", default=30.0)

CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True  # the Job row is the source of truth, not a result backend
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = queues.INGEST
# The sweeper has a queue of its own, served by a worker that runs nothing else (serve.py).
CELERY_TASK_ROUTES = {"jobs.sweep": {"queue": queues.CONTROL}}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # A message held by a worker that died comes back after this long; the sweeper is faster.
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=6 * 3600),
    # A worker takes its queues in the order given (-Q interactive,ingest,batch), not in
    # rotation: a free slot goes to the first non-empty queue (workers/queues.py).
    "queue_order_strategy": "priority",
}
# A prefork child that holds more than this (KiB) after a job is replaced by a fresh one
# (a child that read a document and answered holds ~0.9 GB: torch, the embedder, the embedded
# model; docs/deployment.md). 0: no cap.
CELERY_WORKER_MAX_MEMORY_PER_CHILD = env.int("CELERY_WORKER_MAX_MEMORY_PER_CHILD",
                                             default=2 * 1024 * 1024) or None
JOB_SWEEP_INTERVAL = env.float("JOB_SWEEP_INTERVAL", default=30.0)
CELERY_BEAT_SCHEDULE = {
    "sweep-lost-jobs": {
        "task": "jobs.sweep",
        "schedule": JOB_SWEEP_INTERVAL,
        # A sweep not run by the next one is dropped: the next one does the same work.
        "options": {"expires": JOB_SWEEP_INTERVAL},
    },
}

# -- Jobs ------------------------------------------------------------------------------------
JOB_LOST_AFTER = timedelta(seconds=env.int("JOB_LOST_AFTER_SECONDS", default=60))
# Attempts a job gets (each claim by a worker is one; the row counts them, nothing else
# retries): after a transient error it waits and tries again until then, and a job whose
# worker died this many times is failed as poison instead of being sent again.
JOB_MAX_ATTEMPTS = max(1, env.int("JOB_MAX_ATTEMPTS", default=3))
DEMO_JOB_STEP_DELAY = env.float("DEMO_JOB_STEP_DELAY", default=0.15)
# Time limits per job kind, seconds: (soft, hard). At the soft limit the job ends failed; at
# the hard one the worker child is killed (a job stuck in C code) and replaced, and the
# sweeper sends the job again until its attempts run out. Only the prefork pool enforces
# them. JOB_TIME_LIMITS in the environment overrides entries: "qa_answer=300/330,default=".
_HOUR = 3600
JOB_TIME_LIMITS: dict[str, tuple[float | None, float | None]] = {
    "default": (30 * 60, 31 * 60),
    "qa_answer": (10 * 60, 11 * 60),
    "writing_section": (15 * 60, 16 * 60),
    "writing_plan": (15 * 60, 16 * 60),
    "llm_check": (3 * 60, 4 * 60),
    "batch_item": (15 * 60, 16 * 60),
    "batch_webhook": (2 * 60, 3 * 60),
    "ingest_document": (2 * _HOUR, 2 * _HOUR + 60),
    "compress": (2 * _HOUR, 2 * _HOUR + 60),
    "needle_test": (2 * _HOUR, 2 * _HOUR + 60),
    "writing_write": (8 * _HOUR, 8 * _HOUR + 60),
}
JOB_TIME_LIMITS.update({
    kind: tuple((float(part) if part else None) for part in (limits.split("/") + [""])[:2])
    for kind, limits in env.dict("JOB_TIME_LIMITS", default={}).items()
})
# Per-team caps on the jobs of a kind dispatched or running at once (apps/jobs/dispatch.py):
# the rest wait on their rows and are sent as the team's earlier ones end, so one team's
# 1,000-item batch never fills the queue ahead of the others. JOB_TEAM_CAPS in the
# environment adds or overrides kinds: "compress=2,batch_item=8"; 0 = no cap.
BATCH_MAX_RUNNING_PER_TEAM = env.int("BATCH_MAX_RUNNING_PER_TEAM", default=4)
JOB_TEAM_CAPS: dict[str, int] = {
    "batch_item": BATCH_MAX_RUNNING_PER_TEAM,
    **env.dict("JOB_TEAM_CAPS", cast={"value": int}, default={}),
}

# -- LLM backend (the engine reads the LLM_* variables from the process environment) ----------
# What `stack.start_for` adds to os.environ where unset, for the engine and the processes a
# command starts: `.env`'s values, the embedded model's folder under var/ (whatever the
# working directory) and no model hub.
PROCESS_ENVIRONMENT_DEFAULTS = {
    **{name: value for name, value in env.ENVIRON.items() if name not in os.environ},
    "LLM_MODELS_DIR": env.str("LLM_MODELS_DIR", default=str(stack.var_dir() / "models")),
    "HF_HUB_OFFLINE": env.str("HF_HUB_OFFLINE", default="1"),
}
# Answers are checked against their citations; unsupported ones say the documents don't
# appear to answer (strict | normal | off; workers/qa/grounding.py).
QA_GROUNDING = env.str("QA_GROUNDING", default="normal")
# While an answer streams (tokens go live over Redis), its row is saved this often at most, so
# a page reloaded mid-answer shows most of it; the finished answer is saved once at the end.
QA_PARTIAL_SAVE_SECONDS = env.float("QA_PARTIAL_SAVE_SECONDS", default=5.0)

# -- Documents -------------------------------------------------------------------------------
DOCUMENT_MAX_BYTES = env.int("DOCUMENT_MAX_BYTES", default=100 * 1024 * 1024)
DOCUMENT_MAX_PAGES = env.int("DOCUMENT_MAX_PAGES", default=5_000)
DOCUMENT_MAX_FILES_PER_UPLOAD = env.int("DOCUMENT_MAX_FILES_PER_UPLOAD", default=50)
# Sniffing and reading an upload run in a child process with these limits: CPU seconds, and
# memory beyond the bare reader's; past either the document fails with a clear error.
DOCUMENT_PARSE_SECONDS = env.float("DOCUMENT_PARSE_SECONDS", default=120.0)
DOCUMENT_PARSE_MEMORY_MB = env.int("DOCUMENT_PARSE_MEMORY_MB", default=2048)
# CPU seconds OCR may spend on one page; a page past it is left unreadable (shown on the
# document) and the next is read.
DOCUMENT_OCR_PAGE_SECONDS = env.float("DOCUMENT_OCR_PAGE_SECONDS", default=60.0)
# Long writing: the largest target length a writing project may ask for (words).
WRITING_MAX_WORDS = env.int("WRITING_MAX_WORDS", default=50_000)
EMBEDDING_MODEL = env.str("EMBEDDING_MODEL", default="")  # empty: the packaged all-MiniLM-L6-v2
# Retrieval chunks longer than the embedder's window are embedded with a LongEmbed strategy
# (truncate | pcw | pi | ntk); pcw won the benchmark in docs/documents.md.
EMBEDDING_CHUNK_TOKENS = env.int("EMBEDDING_CHUNK_TOKENS", default=0)  # 0: the model's window
EMBEDDING_STRATEGY = env.str("EMBEDDING_STRATEGY", default="pcw")
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024  # larger uploads spool to a temporary file
# Request bodies: apps/core/bodylimit.py answers 413 past these as the bytes arrive (chunked
# too), before Django spools anything. Upload addresses get DOCUMENT_MAX_BYTES per file allowed.
REQUEST_MAX_BYTES = env.int("REQUEST_MAX_BYTES", default=4 * 1024 * 1024)  # pages and forms
API_JSON_MAX_BYTES = env.int("API_JSON_MAX_BYTES", default=10 * 1024 * 1024)  # REST bodies

# -- REST API (apps/api) ---------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.api.authentication.ApiKeyAuthentication",  # first: its 401 names Bearer
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["apps.api.authentication.HasPrincipal"],
    "DEFAULT_THROTTLE_CLASSES": ["apps.api.authentication.ApiKeyRateThrottle"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["apps.api.parsers.LimitedJSONParser"],  # API_JSON_MAX_BYTES
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Scriptorium API",
    "DESCRIPTION": "Documents and batches of QA, compression and writing items. Authenticate "
                   "with `Authorization: Bearer <team API key>` (team settings page).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",  # served from our static files: no CDN
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}
API_BATCH_MAX_ITEMS = env.int("API_BATCH_MAX_ITEMS", default=1000)
API_THROTTLE_RATE = env.str("API_THROTTLE_RATE", default="600/minute")  # per key; "" = off
# Batch items per key (a batch of N items takes N); at least API_BATCH_MAX_ITEMS. "" = off
API_ITEM_THROTTLE_RATE = env.str("API_ITEM_THROTTLE_RATE", default="3000/hour")
# One deadline for the whole delivery (lookup, connect, send, answer), not per read.
API_WEBHOOK_TIMEOUT = env.float("API_WEBHOOK_TIMEOUT", default=10.0)
API_WEBHOOK_MAX_RESPONSE_BYTES = env.int("API_WEBHOOK_MAX_RESPONSE_BYTES", default=4096)
# Webhooks to loopback/private addresses are refused (SSRF) unless this is set.
API_WEBHOOK_ALLOW_PRIVATE = env.bool("API_WEBHOOK_ALLOW_PRIVATE", default=False)

# -- Accounts --------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = env.str("ACCOUNT_EMAIL_VERIFICATION", default="optional")
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_SESSION_REMEMBER = True
ACCOUNT_RATE_LIMITS = {"login_failed": "10/m/ip,5/5m/key"}
# Behind N proxies the client's address is the Nth from the right in X-Forwarded-For; 0 (no
# proxy) uses the peer address. Without it every login behind a proxy shares one IP limit.
ALLAUTH_TRUSTED_PROXY_COUNT = env.int("ALLAUTH_TRUSTED_PROXY_COUNT", default=0)

EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Scriptorium <noreply@localhost>")

INVITATION_TTL = timedelta(days=env.int("INVITATION_TTL_DAYS", default=7))

# -- Static and media ------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = stack.var_dir() / "staticfiles"  # made by `stack.start_for` / collectstatic
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = True  # serve straight from the source folders in development
MEDIA_ROOT = env.path("MEDIA_ROOT", default=stack.var_dir() / "media")
MEDIA_URL = "media/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# -- Security: https only unless DEBUG is on (local http development, `manage.py serve`,
# turns these off for itself) --------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]  # health checks speak plain http
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
# "HTTP_X_FORWARDED_PROTO,https" behind a TLS proxy that sets that header; empty without one
# (a client could then claim https itself).
SECURE_PROXY_SSL_HEADER = tuple(env.list("SECURE_PROXY_SSL_HEADER", default=[])) or None
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "pgserver": {"level": "WARNING"},
    },
}
