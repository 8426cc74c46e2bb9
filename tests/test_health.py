"""/healthz (liveness: no I/O) and /readyz (readiness: database and broker, reused briefly)."""

from __future__ import annotations

import pytest

from apps.core import views


@pytest.fixture
def fresh_readiness():
    views.readiness.clear()
    yield views.readiness
    views.readiness.clear()


def test_liveness_touches_neither_database_nor_broker(client, monkeypatch):
    """No `db` fixture: pytest-django fails any database access; the broker check fails too."""
    def no_broker(url):
        raise AssertionError("liveness reached the broker")

    monkeypatch.setattr(views, "_broker_client", no_broker)
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_ready_when_database_and_broker_answer(client, fresh_readiness):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


@pytest.mark.django_db
def test_not_ready_when_the_broker_is_unreachable(client, settings, tmp_path, fresh_readiness):
    settings.CELERY_BROKER_URL = f"redis+socket://{tmp_path}/nothing.sock?virtual_host=0"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["broker"].startswith("error") and response.json()["database"] == "ok"


def test_not_ready_without_a_database(client, fresh_readiness):
    """No `db` fixture: the database check fails as an unreachable database would."""
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["database"].startswith("error")


def test_readiness_is_checked_once_per_period(monkeypatch):
    calls = []
    clock = [100.0]
    monkeypatch.setattr(views.time, "monotonic", lambda: clock[0])
    readiness = views.Readiness(2.0, {"database": lambda: calls.append(1)})
    assert readiness.get() == {"database": "ok"}
    clock[0] += 1.9
    assert readiness.get() == {"database": "ok"} and len(calls) == 1  # reused
    clock[0] += 0.2
    readiness.get()
    assert len(calls) == 2  # checked again once the period is over
