from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_admin_sees_backend_model_window_and_health(client, team, admin, monkeypatch):
    monkeypatch.setenv("LLM_BACKEND", "embedded")
    client.force_login(admin)
    page = client.get(reverse("teams:model_status", kwargs={"team_slug": team.slug}))
    body = page.content.decode()
    assert page.status_code == 200
    assert "embedded" in body and "Context window" in body
    assert 'data-testid="llm-health"' in body


def test_a_server_that_is_down_is_shown_as_unavailable(client, team, admin, monkeypatch):
    from workers.llm import reset_backend

    monkeypatch.setenv("LLM_BACKEND", "vllm")
    monkeypatch.setenv("LLM_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens there
    reset_backend()
    try:
        client.force_login(admin)
        body = client.get(reverse("teams:model_status", kwargs={"team_slug": team.slug})) \
            .content.decode()
        assert "Unavailable" in body and "Problem" in body
    finally:
        reset_backend()


def test_members_cannot_see_it(client, team, member):
    client.force_login(member)
    assert client.get(reverse("teams:model_status", kwargs={"team_slug": team.slug})) \
        .status_code == 403


def test_model_check_job_answers_with_the_embedded_model(client, team, admin, monkeypatch):
    from apps.jobs import services
    from apps.jobs.models import Job
    from workers.llm import reset_backend

    monkeypatch.setenv("LLM_BACKEND", "embedded")
    reset_backend()
    client.force_login(admin)
    response = client.post(reverse("teams:model_status", kwargs={"team_slug": team.slug}))
    job = Job.objects.get(kind="llm_check")
    assert response.status_code == 302 and job.queue == "interactive"
    assert services.run(job.pk, job.celery_task_id) == "succeeded"
    job.refresh_from_db()
    assert job.result["answer"].strip() and job.tokens_in > 0 and job.tokens_out > 0


@pytest.mark.django_db(transaction=True)  # the task opens and closes connections itself
def test_backend_down_retries_with_backoff_then_fails_readably(team, admin, monkeypatch,
                                                               settings):
    """A real closed port: BackendUnavailable is transient, the task retries, then gives up
    and the job row says why."""
    from apps.jobs import services
    from apps.jobs.models import Job, Status
    from apps.jobs.tasks import run_job
    from workers.llm import reset_backend

    monkeypatch.setenv("LLM_BACKEND", "vllm")
    monkeypatch.setenv("LLM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("LLM_MAX_ATTEMPTS", "1")
    reset_backend()
    try:
        job = services.create_job(team, "llm_check", {}, user=admin)
        outcomes = []
        for _ in range(settings.JOB_MAX_ATTEMPTS):  # each message as a worker would run it
            job.refresh_from_db()
            outcomes.append(run_job.apply(args=[job.pk], task_id=job.celery_task_id).get())
        assert outcomes == ["retrying"] * (settings.JOB_MAX_ATTEMPTS - 1) + [
            "failed after retries"]
        job.refresh_from_db()
        assert job.status == Status.FAILED and job.error_code == "attempts_exhausted"
        assert job.error.startswith(f"Gave up after {settings.JOB_MAX_ATTEMPTS} attempts")
        assert "BackendUnavailable" in job.error
        # The row is the one counter: every attempt claimed it once, nothing retried inside.
        assert job.attempts == settings.JOB_MAX_ATTEMPTS
        assert Job.objects.count() == 1
    finally:
        reset_backend()
