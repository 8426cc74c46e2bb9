"""The overview (first run): the team's library, conversations and writing, first steps
for a new team that lead to the real pages, and the word-count demo on the model status
page instead of the overview."""

from __future__ import annotations

import hashlib
import re

import pytest
from django.urls import reverse

from apps.chat.models import Conversation
from apps.documents.models import DocStatus, Document
from apps.jobs.models import Job
from apps.writing.models import WritingProject
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def overview(client, team) -> str:
    page = client.get(reverse("teams:dashboard", kwargs={"team_slug": team.slug}))
    assert page.status_code == 200
    return page.content.decode()


def document(team, title="Annual report", status=DocStatus.READY):
    return Document.objects.create(team=team, title=title, original_name="r.pdf",
                                   sha256=hashlib.sha256(title.encode()).hexdigest(),
                                   file="teams/r.pdf", status=status)


def links_of(body: str, testid: str) -> list[str]:
    block = re.search(rf'data-testid="{testid}".*?</li>', body, re.S).group(0)
    return re.findall(r'href="([^"]+)"', block)


def test_an_empty_team_sees_first_steps_that_lead_to_the_real_pages(client, team, owner):
    client.force_login(owner)
    body = overview(client, team)
    assert 'data-testid="first-steps"' in body
    slug = {"team_slug": team.slug}
    steps = {"step-upload": reverse("documents:library", kwargs=slug),
             "step-ask": reverse("chat:list", kwargs=slug),
             "step-write": reverse("writing:list", kwargs=slug)}
    for testid, url in steps.items():
        assert links_of(body, testid) == [url]
        assert client.get(url).status_code == 200
    for text in ("Upload a document", "Ask a question", "Write a long text"):
        assert text in body


def test_the_overview_has_no_demo_job(client, team, owner):
    client.force_login(owner)
    body = overview(client, team)
    assert "Count words" not in body and "Run a job" not in body
    assert 'name="text"' not in body and "word_stats" not in body
    # Nor does the jobs page; it only lists jobs.
    jobs_url = reverse("jobs:list", kwargs={"team_slug": team.slug})
    assert "Count words" not in client.get(jobs_url).content.decode()
    assert client.post(jobs_url, {"text": "Hello there."}).status_code == 405
    assert not Job.objects.exists()


def test_the_model_status_page_has_the_demo_job(client, team, admin):
    client.force_login(admin)
    url = reverse("teams:model_status", kwargs={"team_slug": team.slug})
    body = client.get(url).content.decode()
    assert 'data-testid="demo-job"' in body and "Count words" in body
    response = client.post(url, {"action": "word_stats", "text": "One two three."})
    job = Job.objects.get()
    assert (job.kind, job.team, job.params["text"]) == ("word_stats", team, "One two three.")
    assert response["Location"] == reverse("jobs:detail",
                                           kwargs={"team_slug": team.slug, "pk": job.pk})


def test_the_overview_shows_the_library_conversations_and_writing(client, team, owner):
    document(team, "Annual report", DocStatus.READY)
    document(team, "Board minutes", DocStatus.PROCESSING)
    Conversation.objects.create(team=team, title="What changed in 2025?")
    WritingProject.objects.create(team=team, title="Market guide", instruction="x",
                                  target_words=3000)
    client.force_login(owner)
    body = overview(client, team)
    assert 'data-testid="first-steps"' not in body  # tried everything: no steps
    for text in ("Annual report", "Board minutes", "Processing", "What changed in 2025?",
                 "Market guide", "Draft"):
        assert text in body


def test_steps_already_taken_are_marked_done(client, team, owner):
    document(team)
    client.force_login(owner)
    body = overview(client, team)
    assert 'data-testid="first-steps"' in body
    assert links_of(body, "step-upload") == []  # done: no button
    assert "Done" in re.search(r'data-testid="step-upload".*?</li>', body, re.S).group(0)
    assert links_of(body, "step-ask") == [reverse("chat:list",
                                                  kwargs={"team_slug": team.slug})]


def test_another_teams_library_never_shows(client, team, owner, outsider):
    other = outsider.memberships.get().team
    document(other, "Their secret")
    Conversation.objects.create(team=other, title="Their talk")
    client.force_login(owner)
    body = overview(client, team)
    assert "Their secret" not in body and "Their talk" not in body
    assert 'data-testid="first-steps"' in body


def test_titles_are_escaped(client, team, owner):
    document(team, "<script>alert(1)</script>")
    client.force_login(owner)
    body = overview(client, team)
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;" in body


def test_a_viewer_is_told_who_can_add(client, team):
    viewer = MembershipFactory(team=team, role="viewer").user
    client.force_login(viewer)
    assert "a member or admin adds documents" in overview(client, team)
