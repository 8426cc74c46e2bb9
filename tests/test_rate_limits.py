"""Rate limits live in Redis (Django's cache): every process counts into the same buckets,
and the admin's login goes through the site's rate-limited one."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.cache import caches
from django.urls import reverse
from rest_framework.test import APIClient

import apps.settings as base_settings
from apps.api import keys
from apps.api.authentication import ApiKeyRateThrottle
from apps.api.models import Scope
from apps.stack import BASE_DIR
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

TOO_MANY = "Too many failed login attempts"


def test_the_cache_is_redis_and_another_process_reads_what_this_one_wrote(settings):
    assert settings.CACHES["default"]["BACKEND"].endswith("RedisCache")
    cache = caches["default"]
    cache.set("shared-check", "written by the test process", 60)
    code = ("import django; django.setup(); from django.core.cache import cache; "
            "print(cache.get('shared-check'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=BASE_DIR, timeout=120,
                         env={**os.environ, "DJANGO_SETTINGS_MODULE": "apps.settings_test"})
    assert out.stdout.strip() == "written by the test process", out.stderr[-2000:]
    cache.delete("shared-check")


def test_the_api_throttle_is_one_bucket_for_separate_cache_clients(settings, monkeypatch):
    """Two cache clients with nothing in common but the server (as two web processes, or
    one before and after a restart) count the same key's requests together."""
    settings.API_THROTTLE_RATE = "3/minute"
    membership = MembershipFactory()
    _, token = keys.create_key(membership.team, membership.user, "ci", [Scope.READ])
    path = f"/api/v1/teams/{membership.team.slug}/batches/"
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    # New backends: each with its own connection pool, sharing no memory with the other.
    first, second = caches.create_connection("default"), caches.create_connection("default")
    first.clear()  # counters of earlier runs (key ids repeat)

    monkeypatch.setattr(ApiKeyRateThrottle, "cache", first)
    assert [api.get(path).status_code for _ in range(2)] == [200, 200]
    monkeypatch.setattr(ApiKeyRateThrottle, "cache", second)
    assert [api.get(path).status_code for _ in range(2)] == [200, 429]


def test_the_admin_login_form_is_the_sites_rate_limited_login(client, settings):
    settings.ACCOUNT_RATE_LIMITS = base_settings.ACCOUNT_RATE_LIMITS  # the tests turn it off
    caches["default"].clear()  # counters of earlier runs
    staff = UserFactory(is_staff=True, is_superuser=True)
    staff.set_password("correct horse battery staple")
    staff.save()

    # The admin's own form does not sign anyone in any more: it sends to the site's login.
    response = client.post("/admin/login/?next=/admin/",
                           {"username": staff.email, "password": "correct horse battery staple"})
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('account_login')}?next=/admin/"
    assert "_auth_user_id" not in client.session

    login = response["Location"]
    pages = [client.post(login, {"login": staff.email, "password": f"guess {n}"})
             .content.decode() for n in range(6)]
    assert all(TOO_MANY not in page for page in pages[:5])
    assert TOO_MANY in pages[5]  # 5 failures per account, then the form refuses
    # Even the right password waits now; the count is in Redis, shared by every process.
    refused = client.post(login, {"login": staff.email,
                                  "password": "correct horse battery staple"})
    assert TOO_MANY in refused.content.decode() and "_auth_user_id" not in client.session
    caches["default"].clear()  # the wait is over
    response = client.post(login, {"login": staff.email,
                                   "password": "correct horse battery staple"})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/login/")["Location"] == "/admin/"  # already signed in


def test_hammering_the_login_with_many_accounts_is_limited_per_address(client, settings):
    settings.ACCOUNT_RATE_LIMITS = base_settings.ACCOUNT_RATE_LIMITS
    caches["default"].clear()
    login = client.get("/admin/login/")["Location"]
    pages = [client.post(login, {"login": f"user{n}@example.com", "password": "guess"})
             .content.decode() for n in range(11)]
    assert all(TOO_MANY not in page for page in pages[:10])
    assert TOO_MANY in pages[10]  # 10 failures a minute from one address
    caches["default"].clear()


def test_a_signed_in_person_without_admin_rights_gets_403_not_a_login_loop(client):
    client.force_login(UserFactory())
    assert client.get("/admin/").status_code == 302
    assert client.get("/admin/login/?next=/admin/").status_code == 403
