"""The production profile: Django's deployment check passes with the environment compose.yaml
gives the web service, and that environment serves https only (redirect, HSTS, secure
cookies) while the container's plain-http health check still gets through."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from apps.stack import BASE_DIR

WEB_ENV = yaml.safe_load((BASE_DIR / "compose.yaml").read_text())["services"]["web"]["environment"]
# What the operator's .env gives (compose refuses to start without the `:?` ones).
OPERATOR = {"DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "scriptorium.example.com"}


def _interpolate(value: str) -> str:
    """compose's ${NAME}, ${NAME:-default} and ${NAME:?error}, from OPERATOR."""
    def one(match: re.Match) -> str:
        name, op, arg = match.group(1), match.group(2) or "", match.group(3) or ""
        if name in OPERATOR:
            return OPERATOR[name]
        assert op != ":?", f"compose needs {name}: {arg}"
        return arg if op == ":-" else ""

    return re.sub(r"\$\{(\w+)(:-|:\?)?([^}]*)\}", one, str(value))


def _compose_environment(tmp_path: Path, **changes: str) -> dict[str, str]:
    env = {name: _interpolate(value) for name, value in WEB_ENV.items()}
    # Container paths (volumes) only: here they point into a temporary folder.
    env.update(SCRIPTORIUM_VAR_DIR=str(tmp_path / "var"), MEDIA_ROOT=str(tmp_path / "media"))
    env.update(changes)
    # Nothing of this machine's (or the tests') settings: only what compose sets.
    return {"PATH": os.environ["PATH"], "HOME": str(tmp_path),
            "DJANGO_SETTINGS_MODULE": "apps.settings", **env}


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env,
                          capture_output=True, text=True, timeout=300)


def test_compose_sets_the_production_profile_explicitly():
    for name in ("SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_SSL_REDIRECT",
                 "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD",
                 "SECURE_PROXY_SSL_HEADER"):
        assert name in WEB_ENV, name
    assert "DJANGO_DEBUG" not in WEB_ENV or WEB_ENV["DJANGO_DEBUG"] in ("0", "false")


def test_check_deploy_passes_with_the_compose_environment(tmp_path):
    result = _manage(_compose_environment(tmp_path), "check", "--deploy",
                     "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("change, warning", [
    ({"SECURE_SSL_REDIRECT": "0"}, "security.W008"),
    ({"SESSION_COOKIE_SECURE": "0"}, "security.W012"),
    ({"DJANGO_SECRET_KEY": "short"}, "security.W009"),
])
def test_the_check_fails_when_the_profile_is_weakened(tmp_path, change, warning):
    """The check above can fail: each weakening is caught."""
    result = _manage(_compose_environment(tmp_path, **change), "check", "--deploy",
                     "--fail-level", "WARNING")
    assert result.returncode != 0 and warning in result.stdout + result.stderr


PROBE = """
import django
django.setup()
from django.test import Client
http = Client(HTTP_HOST="scriptorium.example.com")
page = http.get("/accounts/login/")
print("redirect", page.status_code, page.get("Location"))
https = Client(HTTP_HOST="scriptorium.example.com", HTTP_X_FORWARDED_PROTO="https")
page = https.get("/accounts/login/")
print("hsts", page.get("Strict-Transport-Security"))
print("cookie", page.cookies["csrftoken"]["secure"])
health = Client(HTTP_HOST="127.0.0.1:8000").get("/healthz")
print("health", health.status_code)
"""


def test_the_compose_environment_serves_https_only_but_lets_the_health_check_in(tmp_path):
    env = _compose_environment(tmp_path)
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=BASE_DIR, env=env,
                            capture_output=True, text=True, timeout=300)
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    assert lines.get("redirect") == "301 https://scriptorium.example.com/accounts/login/", \
        result.stdout + result.stderr[-3000:]
    assert lines["hsts"] == "max-age=31536000; includeSubDomains; preload"
    assert lines["cookie"] == "True"
    # No database or broker here: the health check answers (503), not redirected or refused.
    assert lines["health"] in ("200", "503")
