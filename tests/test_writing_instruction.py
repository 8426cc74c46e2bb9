"""The writing pages and the instruction's requirements: contradictions refused on the form
before anything is created, the plan job on the issue's beekeeping instruction (the real
model), what each section serves and must do shown on the outline, and kept up to date when
the outline is edited."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.jobs import services as jobs
from apps.writing import services
from apps.writing.document import document_text
from apps.writing.models import WritingProject

BEES = ("Write a practical guide for new beekeepers: equipment, the first inspection, and what "
        "to do in winter.")


def _url(name, team, project=None):
    kwargs = {"team_slug": team.slug}
    if project is not None:
        kwargs["pk"] = project.pk
    return reverse(f"writing:{name}", kwargs=kwargs)


@pytest.mark.parametrize(("instruction", "target", "error"), [
    ("Write a novel of 30 chapters of 500 words about a lighthouse.", "1000",
     "30 chapters of 500 words (15,000 words), but the target length is 1,000 words"),
    ("Write a diary with one entry per week of the year; the move in week 60.", "10000",
     "due in week 60, but a year has 52 weeks"),
    ("Write about the sea. " * 1000, "1000", "characters long; the limit is 8,000"),
])
def test_contradictory_or_huge_instructions_are_refused_on_the_form(client, team, member,
                                                                    instruction, target, error):
    client.force_login(member)
    response = client.post(_url("list", team), {"instruction": instruction,
                                                "target_words": target, "then": "write"})
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not WritingProject.objects.exists()


def test_the_issue_instruction_is_planned_with_a_section_per_part(client, team, member):
    client.force_login(member)
    client.post(_url("list", team), {"instruction": BEES, "target_words": "600"})
    project = WritingProject.objects.get()
    assert [p["label"] for p in project.requirements["parts"]] == [
        "equipment", "the first inspection", "what to do in winter"]
    project = services.start_plan(project, member)
    assert jobs.run(project.job.pk, project.job.celery_task_id) == "succeeded"
    project.refresh_from_db()
    sections = list(project.sections.all())
    assert len(sections) >= 3 and sum(s.target_words for s in sections) == 600
    served = {x for s in sections for x in s.serves}
    assert {"part:1", "part:2", "part:3"} <= served
    page = client.get(_url("detail", team, project)).content.decode()
    for part in ("part:1", "part:2", "part:3"):
        assert f'data-testid="part-{part}">✓' in page
    assert "Serves: equipment" in page


def test_outline_shows_what_each_section_serves_and_must_do_and_follows_edits(client, team,
                                                                              member):
    project = services.create_project(
        team, member, target_words=1200,
        instruction="Write a diary with one entry per week for 4 weeks, the storm in week 3. "
                    "End each entry with a checklist. Separate entries with ###.")
    for n in range(1, 5):
        services.add_section(project, f"Week {n}", 300)
    client.force_login(member)
    page = client.get(_url("detail", team, project)).content.decode()
    assert "Serves: the storm" in page.split('data-testid="serves-3"')[1].split("</div>")[0]
    assert "Must: End each entry with a checklist" in page
    assert "separate entries with ###" in page.lower()
    # The storm's week renamed: nothing serves the storm any more, and the page says so.
    third = project.sections.get(position=3)
    services.update_section(project, third.pk, "A quiet week at home", 300)
    page = client.get(_url("detail", team, project)).content.decode()
    assert 'data-testid="part-item:1"><span' in page and "no section covers it" in page
    services.add_section(project, "Week 3: the storm hits the coast", 200, after=3)
    page = client.get(_url("detail", team, project)).content.decode()
    assert 'data-testid="part-item:1">✓' in page


def test_document_export_uses_the_separator(team, member):
    project = services.create_project(team, member, target_words=400,
                                      instruction="Write two entries, one per week for 2 "
                                                  "weeks. Separate entries with ***.")
    for n in (1, 2):
        section = services.add_section(project, f"Week {n}", 200)
        section.text, section.status = f"Entry {n} text.", "done"
        section.save()
    assert document_text(project) == "Entry 1 text.\n\n***\n\nEntry 2 text."


def test_the_batch_api_refuses_a_contradictory_write_item():
    from apps.api.items import ItemInvalid, validate_write

    with pytest.raises(ItemInvalid, match="30 chapters of 500 words"):
        validate_write({"instruction": "Write a novel of 30 chapters of 500 words about a "
                                       "lighthouse.", "target_words": 1000})
    assert validate_write({"instruction": BEES, "target_words": 600})["target_words"] == 600
