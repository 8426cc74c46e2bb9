"""Long writing: creating (bad input), the outline editor and its lock, access, the plan and
write jobs with the real model, resume after a kill, exports, rendering."""

from __future__ import annotations

import io
import re
import threading
import time
from datetime import timedelta

import pypdfium2
import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from apps.jobs import services as jobs
from apps.jobs.models import Job, Status
from apps.teams.models import Role
from apps.writing import services
from apps.writing.models import ProjectStatus, Section, SectionStatus, WritingProject
from tests.factories import JobFactory, MembershipFactory
from workers import events
from workers.writing import DEFAULT_TARGET_WORDS

pytestmark = pytest.mark.django_db


def _url(name, project=None, **kwargs):
    team_slug = kwargs.pop("team_slug", None) or project.team.slug
    if project is not None:
        kwargs["pk"] = project.pk
    return reverse(f"writing:{name}", kwargs={"team_slug": team_slug, **kwargs})


@pytest.fixture
def project(team, member):
    return services.create_project(team, member, instruction="Write about lighthouses.",
                                   target_words=1000, title="Lighthouses")


def _outline(project, sections):
    for point, words in sections:
        services.add_section(project, point, words)
    project.refresh_from_db()
    return list(project.sections.all())


# -- Creating: bad input -----------------------------------------------------------------

@pytest.mark.parametrize(("instruction", "target", "error"), [
    ("Write about tea.", "0", "positive"),
    ("Write about tea.", "-300", "positive"),
    ("Write about tea.", "50001", "above the limit of 50,000"),
    ("Write about tea.", "lots", "whole number"),
    ("   ", "1000", "Write an instruction first"),
])
def test_bad_input_is_refused_with_a_clear_error(client, team, member, instruction, target,
                                                 error):
    client.force_login(member)
    response = client.post(_url("list", team_slug=team.slug),
                           {"instruction": instruction, "target_words": target})
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not WritingProject.objects.exists()


@pytest.mark.parametrize(("instruction", "target"), [
    ("Write a 400-word essay on lighthouses.", 400),
    ("A history of lighthouses in about 3,000 words.", 3000),
    ("A history of lighthouses.", DEFAULT_TARGET_WORDS),
])
def test_no_target_takes_the_length_the_instruction_states(client, team, member, instruction,
                                                           target):
    client.force_login(member)
    response = client.post(_url("list", team_slug=team.slug),
                           {"instruction": instruction, "target_words": ""})
    assert response.status_code == 302
    assert WritingProject.objects.get().target_words == target


def test_the_limit_is_a_setting(client, team, member, settings):
    settings.WRITING_MAX_WORDS = 2000
    client.force_login(member)
    response = client.post(_url("list", team_slug=team.slug),
                           {"instruction": "Tea", "target_words": "2500"})
    assert "above the limit of 2,000" in response.content.decode()


def test_create_then_edit_the_outline(client, team, member):
    client.force_login(member)
    response = client.post(_url("list", team_slug=team.slug), {
        "instruction": "Write a guide to tea.", "target_words": "1,200", "title": "Tea",
        "style": "Warm", "then": "outline"})
    project = WritingProject.objects.get()
    assert response.status_code == 302 and project.target_words == 1200
    assert project.status == ProjectStatus.DRAFT and not project.job
    page = client.get(_url("detail", project)).content.decode()
    assert "No outline yet" in page


# -- Outline editing ---------------------------------------------------------------------

def test_outline_add_edit_move_delete_with_live_total(client, project, member):
    client.force_login(member)
    headers = {"HX-Request": "true"}
    for point, words in [("Why lighthouses", "300"), ("Keepers", "400"), ("Today", "300")]:
        response = client.post(_url("section_add", project), {"point": point, "words": words},
                               headers=headers)
        assert response.status_code == 200
    assert 'data-testid="outline-total">1,000<' in response.content.decode()
    a, b, c = project.sections.all()
    client.post(_url("section_edit", project, section_pk=b.pk),
                {"point": "Life of the keepers", "words": "500"}, headers=headers)
    client.post(_url("section_move", project, section_pk=c.pk), {"direction": "up"},
                headers=headers)
    response = client.post(_url("section_delete", project, section_pk=a.pk), headers=headers)
    assert 'data-testid="outline-total">800<' in response.content.decode()
    assert [(s.position, s.point, s.target_words) for s in project.sections.all()] == [
        (1, "Today", 300), (2, "Life of the keepers", 500)]
    # Insert at the front.
    services.add_section(project, "Opening", 200, after=0)
    assert [s.point for s in project.sections.all()] == ["Opening", "Today",
                                                         "Life of the keepers"]


@pytest.mark.parametrize(("point", "words", "error"), [
    ("", "300", "main point"), ("Tea", "abc", "whole number"), ("Tea", "0", "between"),
    ("Tea", "99999", "between"),
])
def test_bad_outline_edits_are_refused(client, project, member, point, words, error):
    client.force_login(member)
    response = client.post(_url("section_add", project), {"point": point, "words": words},
                           headers={"HX-Request": "true"})
    assert error in response.content.decode()
    assert not project.sections.exists()


def test_outline_is_locked_while_writing(client, project, member):
    (section,) = _outline(project, [("Why lighthouses", 300)])
    services.start_write(project, member)  # queued: the outline is locked from now
    client.force_login(member)
    response = client.post(_url("section_edit", project, section_pk=section.pk),
                           {"point": "Changed", "words": "400"}, headers={"HX-Request": "true"})
    assert "locked" in response.content.decode()
    section.refresh_from_db()
    assert section.point == "Why lighthouses" and section.target_words == 300
    with pytest.raises(services.WritingError, match="locked"):
        services.start_write(project, member)  # no second job either
    with pytest.raises(services.WritingError, match="locked"):
        services.delete_section(project, section.pk)
    page = client.get(_url("detail", project)).content.decode()
    assert 'data-testid="outline-locked"' in page and 'hx-trigger="every 2s"' in page


# -- Access ------------------------------------------------------------------------------

def test_other_team_gets_404_and_viewer_cannot_write(client, project, viewer):
    (section,) = _outline(project, [("Why lighthouses", 300)])
    other = MembershipFactory(role=Role.OWNER).user
    client.force_login(other)
    assert client.get(_url("detail", project)).status_code == 404
    own = other.memberships.get().team
    # The project's id under the outsider's own team is 404 too (scoped from the team).
    assert client.get(_url("detail", project, team_slug=own.slug)).status_code == 404
    assert client.post(_url("write", project, team_slug=own.slug)).status_code == 404
    client.force_login(viewer)
    assert client.get(_url("detail", project)).status_code == 200
    for name, kwargs in [("write", {}), ("plan", {}), ("section_add", {}),
                         ("section_edit", {"section_pk": section.pk}),
                         ("regenerate", {"section_pk": section.pk}),
                         ("rewrite_from", {"section_pk": section.pk}), ("delete", {})]:
        assert client.post(_url(name, project, **kwargs)).status_code == 403, name
    assert client.post(_url("list", team_slug=project.team.slug),
                       {"instruction": "x", "target_words": "300"}).status_code == 403
    project.refresh_from_db()
    assert project.status == ProjectStatus.PLANNED and not project.job


# -- Jobs with the real model -------------------------------------------------------------

def test_plan_job_makes_an_outline_that_sums_to_the_target(team, member):
    project = services.create_project(team, member, instruction="Write a guide to tea.",
                                      target_words=400)
    project = services.start_plan(project, member)
    assert project.job.kind == "writing_plan" and project.job.queue == "interactive"
    assert jobs.run(project.job.pk, project.job.celery_task_id) == "succeeded"
    project.refresh_from_db()
    assert project.status == ProjectStatus.PLANNED
    assert project.plan_source in ("model", "repaired", "fallback") and project.plan_note
    assert sum(s.target_words for s in project.sections.all()) == 400


def test_write_job_resumes_after_a_kill_without_duplicates_then_exports(client, project,
                                                                        member):
    first, second = _outline(project, [("What a lighthouse is for", 60),
                                       ("The life of a keeper", 60)])
    # A killed run: section 1 was saved; section 2 was cut off mid-way.
    Section.objects.filter(pk=first.pk).update(
        text="A lighthouse warns ships of rocks. Its light turns all night long.",
        words=12, status=SectionStatus.DONE, attempts=1)
    Section.objects.filter(pk=second.pk).update(text="Half a sente", status=SectionStatus.WRITING)
    project = services.start_write(project, member)
    assert jobs.run(project.job.pk, project.job.celery_task_id) == "succeeded", \
        project.job.error
    project.refresh_from_db()
    job = project.job
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED
    assert job.result["written"] == [2] and job.result["resumed_after"] == [1]
    assert project.status == ProjectStatus.DONE
    sections = list(project.sections.all())
    assert [s.position for s in sections] == [1, 2]  # nothing duplicated
    assert sections[0].text.startswith("A lighthouse warns ships")  # kept as it was
    assert sections[1].status == SectionStatus.DONE and sections[1].words > 20
    assert not sections[1].text.startswith("Half a sente")
    assert project.tokens_out > 0 and job.tokens_out > 0

    # A re-delivered save of a written section changes nothing.
    from workers.writing.writer import SectionResult
    assert not services.save_section(project, 2, SectionResult(2, "Other text.", 2, 60, "done"))

    client.force_login(member)
    page = client.get(_url("detail", project)).content.decode()
    assert 'data-testid="document"' in page and "A lighthouse warns ships" in page
    progress = client.get(_url("progress", project))
    assert progress.status_code == 286  # nothing runs: the polling stops

    md = client.get(_url("export", project, fmt="md"))
    assert md["Content-Disposition"] == 'attachment; filename="lighthouses.md"'
    body = md.content.decode()
    assert body.startswith("# Lighthouses\n") and sections[1].text.strip()[:40] in body

    from docx import Document as DocxDocument
    docx = client.get(_url("export", project, fmt="docx"))
    paragraphs = DocxDocument(io.BytesIO(docx.content)).paragraphs
    assert (paragraphs[0].style.name, paragraphs[0].text) == ("Title", "Lighthouses")
    texts = [p.text for p in paragraphs]
    assert any(p.startswith("A lighthouse warns ships") for p in texts)
    assert any(sections[1].text.strip()[:40] in p for p in texts)

    pdf = client.get(_url("export", project, fmt="pdf"))
    assert pdf["Content-Type"] == "application/pdf"
    text = pypdfium2.PdfDocument(pdf.content)[0].get_textpage().get_text_range()
    assert "Lighthouses" in text and "A lighthouse warns ships" in " ".join(text.split())
    assert client.get(_url("export", project, fmt="exe")).status_code == 404


def test_regenerate_one_section(project, member):
    first, second = _outline(project, [("Why lighthouses", 60), ("Keepers", 60)])
    for s in (first, second):
        Section.objects.filter(pk=s.pk).update(text=f"Old text {s.position}.", words=3,
                                               status=SectionStatus.DONE)
    project = services.start_regenerate(project, second, member)
    assert project.job.kind == "writing_section"
    assert jobs.run(project.job.pk, project.job.celery_task_id) == "succeeded"
    project.refresh_from_db()
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.text == "Old text 1." and second.text != "Old text 2." and second.words > 20
    assert project.status == ProjectStatus.DONE and project.sections.count() == 2


class _Progress:
    def __call__(self, current, total, message=""):
        pass

    def add_tokens(self, prompt, completion):
        pass


def test_rewriting_a_section_marks_the_later_ones_then_rewrite_from_here_refreshes_them(
        client, project, member, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from tests.qa.conftest import Spy
    from workers.llm import get_backend

    sections = _outline(project, [("Why coasts needed lights", 50), ("The keepers", 50),
                                  ("Lighthouses today", 50)])
    written = timezone.now() - timedelta(hours=1)
    for s in sections:  # written in order an hour ago
        Section.objects.filter(pk=s.pk).update(
            text=f"Old text of section {s.position}.", words=5, status=SectionStatus.DONE,
            written_at=written + timedelta(minutes=s.position))
    first, second, third = sections
    client.force_login(member)

    # Rewrite section 1 alone: 2 and 3 stay, and the page says they follow the old one.
    project = services.start_regenerate(project, first, member)
    assert jobs.run(project.job.pk, project.job.celery_task_id) == "succeeded"
    first.refresh_from_db()
    assert first.text != "Old text of section 1." and first.words > 20
    assert [s.text for s in project.sections.all()][1:] == ["Old text of section 2.",
                                                            "Old text of section 3."]
    page = client.get(_url("detail", project)).content.decode()
    for position in (2, 3):
        assert f'data-testid="older-context-{position}"' in page
    assert "Written before section 1 was rewritten" in page
    assert 'data-testid="older-context-1"' not in page and 'data-testid="rewrite-from-2"' in page

    # "Rewrite from here" on section 2: 2 and 3 are written again after the text of
    # section 1 (side by side on a batching backend, saved in order); 1 is kept as it is.
    spy = Spy(get_backend())
    monkeypatch.setattr("apps.writing.services.get_backend", lambda: spy)
    response = client.post(_url("rewrite_from", project, section_pk=second.pk))
    assert response.status_code == 302
    project.refresh_from_db()
    assert project.job.kind == "writing_write" and project.job.params["rewrite_from"] == 2
    assert jobs.run(project.job.pk, project.job.celery_task_id) == "succeeded", \
        project.job.error
    project.refresh_from_db()
    assert project.job.result["written"] == [2, 3]
    assert project.job.result["resumed_after"] == [1]
    kept, second, third = project.sections.all()
    assert kept.text == first.text
    assert second.text != "Old text of section 2." and third.text != "Old text of section 3."
    assert second.words > 20 and third.words > 20
    prompts = [sent[-1]["content"] for sent in spy.sent]
    for n in (2, 3):  # each reads the new section 1, never an old text
        prompt = next(p for p in prompts if f"Now write section {n} of 3" in p)
        assert first.text[:80] in prompt and "Old text of section" not in prompt
    page = client.get(_url("detail", project)).content.decode()
    assert "older-context-" not in page
    assert project.status == ProjectStatus.DONE

    # A re-delivery of the same job rewrites nothing again (it redoes only sections saved
    # before the job was created).
    again = services.write_project(project, _Progress(), rewrite_from=2,
                                   since=project.job.created_at)
    assert again["written"] == [] and again["resumed_after"] == [1, 2, 3]
    assert [s.text for s in project.sections.all()] == [kept.text, second.text, third.text]


def test_cancelled_write_unlocks_and_keeps_what_was_written(project, member):
    first, second = _outline(project, [("Why lighthouses", 60), ("Keepers", 60)])
    Section.objects.filter(pk=first.pk).update(text="Kept.", words=1, status=SectionStatus.DONE)
    project = services.start_write(project, member)
    jobs.cancel(project.job)  # cancelled while queued: the runner never starts
    project.refresh_from_db()
    assert not project.is_busy
    services.update_section(project, second.pk, "Changed", 300)  # unlocked
    project.refresh_from_db()
    assert project.status == ProjectStatus.PLANNED
    assert project.sections.get(pk=first.pk).text == "Kept."


def test_a_job_that_gives_up_marks_the_project_failed(project, member):
    (section,) = _outline(project, [("Why lighthouses", 60)])
    project = services.start_write(project, member)
    job = project.job
    for _ in range(settings.JOB_MAX_ATTEMPTS):  # its worker dies mid-section every time
        job.refresh_from_db()
        jobs.claim(job.pk, job.celery_task_id)
        Section.objects.filter(pk=section.pk).update(status=SectionStatus.WRITING, text="Half")
        Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
        jobs.sweep_lost_jobs(held=set())
    project.refresh_from_db()
    section.refresh_from_db()
    assert project.status == ProjectStatus.FAILED and "The worker died" in project.error
    assert section.status == SectionStatus.PENDING and section.text == ""


# -- Reference documents -------------------------------------------------------------------

KEEPER = ("The lighthouse of Vellmar Point.\n\nThe keeper of Vellmar Point is named Oskar "
          "Brandt. He has kept the light since 1987 and paints the tower red every spring. "
          "Its lamp burns whale oil no longer: since 1961 it runs on a 400-watt bulb that can "
          "be seen 19 nautical miles out.\n\nEvery winter storm Brandt logs the height of the "
          "waves in a green notebook.")
SECRET = ("The keeper of Vellmar Point is secretly named Ilse Marquardt; the tower code is 7781 "
          "and the lighthouse logbook is kept in a red tin.")


def _ingested(team, user, name: str, text: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from apps.documents import services as documents
    from apps.documents.models import DocStatus

    document = documents.upload(team, user, SimpleUploadedFile(name, text.encode())).document
    assert jobs.run(document.job.pk, document.job.celery_task_id) == "succeeded"
    document.refresh_from_db()
    assert document.status == DocStatus.READY and document.chunks.exists()
    return document


def test_reference_documents_feed_the_section_prompt_and_stay_in_the_team(
        client, team, member, outsider, monkeypatch):
    from tests.qa.conftest import Spy
    from workers.llm import get_backend

    mine = _ingested(team, member, "keeper.txt", KEEPER)
    theirs = _ingested(outsider.teams.get(), outsider, "secret.txt", SECRET)
    client.force_login(member)
    form = {"instruction": "Write about the keeper of Vellmar Point.", "target_words": "60",
            "title": "Vellmar"}

    # Another team's document is refused like one that does not exist: nothing is created,
    # and the page names neither it nor its team.
    for chosen in ([mine.pk, theirs.pk], [theirs.pk], [999_999], ["x"]):
        response = client.post(_url("list", team_slug=team.slug), {**form, "documents": chosen})
        body = response.content.decode()
        assert response.status_code == 400, chosen
        assert escape(services.NOT_IN_LIBRARY) in body and "secret" not in body.lower()
    assert not WritingProject.objects.exists()
    with pytest.raises(services.WritingError, match="not in this team's library"):
        services.create_project(team, member, instruction="x", target_words=60,
                                documents=[theirs])
    assert not WritingProject.objects.exists()

    response = client.post(_url("list", team_slug=team.slug), {**form, "documents": [mine.pk]})
    project = WritingProject.objects.get()
    assert response.status_code == 302 and list(project.documents.all()) == [mine]
    assert f"References: {mine.title}" in client.get(_url("detail", project)).content.decode()
    # Even a row that somehow links another team's document never reaches the prompt:
    # retrieval is scoped from the project's team inside the query.
    project.documents.add(theirs)
    services.add_section(project, "Oskar Brandt, the keeper of Vellmar Point, and his tower",
                         60)

    spy = Spy(get_backend())
    monkeypatch.setattr("apps.writing.services.get_backend", lambda: spy)
    project = services.start_write(project, member)
    assert jobs.run(project.job.pk, project.job.celery_task_id) == "succeeded", \
        project.job.error
    # The section's prompt (the requests restating its sources' sentences come first).
    prompt = next(m[-1]["content"] for m in spy.sent if "Now write section" in m[-1]["content"])
    block = prompt.split("Sources (numbered", 1)[1].split("\n\nNow write section", 1)[0]
    passages = re.findall(r"^\[\d\] (.*?)(?=\n\[\d\] |\Z)", block.split(":\n", 1)[1],
                          re.S | re.M)
    assert passages and all(p in mine.text for p in passages), passages  # exact spans
    assert "He has kept the light since 1987 and paints the tower red every spring." in prompt
    for sent in spy.sent:
        assert not any("Marquardt" in m["content"] or "7781" in m["content"] for m in sent)
    section = project.sections.get()
    assert section.status == SectionStatus.DONE and section.words > 20


# -- Rendering ---------------------------------------------------------------------------

def test_model_text_is_rendered_inert(client, project, member):
    (section,) = _outline(project, [("Why lighthouses", 300)])
    Section.objects.filter(pk=section.pk).update(
        text="Hello <script>alert(1)</script> **bold** <img src=x onerror=alert(2)>",
        words=5, status=SectionStatus.DONE)
    client.force_login(member)
    page = client.get(_url("detail", project)).content.decode()
    assert "<script>alert(1)" not in page and "<img src=x" not in page
    assert "<strong>bold</strong>" in page


@pytest.mark.django_db(transaction=True)
def test_stream_sends_the_current_section_then_tokens_then_done(client, team, member,
                                                                 settings):
    project = WritingProject.objects.create(team=team, title="Live", instruction="x",
                                            target_words=300, status=ProjectStatus.WRITING,
                                            job=JobFactory(team=team, kind="writing_write"))
    Section.objects.create(project=project, position=1, point="a", target_words=100,
                           status=SectionStatus.DONE, text="Done.")
    Section.objects.create(project=project, position=2, point="b", target_words=100,
                           status=SectionStatus.WRITING, text="Once")
    client.force_login(member)

    def speak():
        import redis

        name = events.channel("writing", project.pk)
        kwargs = events._client_kwargs(settings.REDIS_URL)
        client = redis.Redis.from_url(kwargs.pop("url")) if "url" in kwargs else \
            redis.Redis(**kwargs)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not client.pubsub_numsub(name)[0][1]:
            time.sleep(0.1)  # publish only once the view listens (pub/sub keeps nothing)
        client.close()
        events.publish(name, {"type": "token", "section": 2, "text": " upon"}, settings.REDIS_URL)
        events.publish(name, {"type": "section", "section": 3}, settings.REDIS_URL)
        events.publish(name, {"type": "done", "status": "done"}, settings.REDIS_URL)

    async def read(response) -> str:
        return b"".join([chunk async for chunk in response.streaming_content]).decode()

    threading.Thread(target=speak).start()
    response = client.get(_url("stream", project))
    assert response["Content-Type"] == "text/event-stream"
    body = async_to_sync(read)(response)
    assert body.index('"Once"') < body.index('" upon"') < body.index("event: section") < \
        body.index("event: done")
