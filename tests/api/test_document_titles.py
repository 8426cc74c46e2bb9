"""Titles people can trust and change: the file's own title or its file name, renamed on the
document page or through the API, kept when the document is ingested again."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.documents import services
from apps.documents.models import Document
from apps.documents.titles import rename, title_after_ingest
from apps.jobs import services as jobs
from tests.api.conftest import ready_document, url

pytestmark = pytest.mark.django_db


def _rename_url(document: Document) -> str:
    return reverse("documents:rename", kwargs={"team_slug": document.team.slug,
                                               "pk": document.pk})


def test_a_member_renames_on_the_document_page(client, team, member):
    document = ready_document(team, title="well adapted to the conditions of")
    client.force_login(member)
    response = client.post(_rename_url(document), {"title": "  Cave  fauna survey "},
                           follow=True)
    assert response.status_code == 200
    document.refresh_from_db()
    assert (document.title, document.title_edited) == ("Cave fauna survey", True)
    assert b"Cave fauna survey" in response.content


def test_an_empty_title_is_refused_and_changes_nothing(client, team, member):
    document = ready_document(team, title="Lighthouse")
    client.force_login(member)
    response = client.post(_rename_url(document), {"title": "   "}, follow=True)
    assert "A title cannot be empty." in response.content.decode()
    document.refresh_from_db()
    assert (document.title, document.title_edited) == ("Lighthouse", False)


def test_a_viewer_cannot_rename(client, team, viewer):
    document = ready_document(team, title="Lighthouse")
    client.force_login(viewer)
    assert client.post(_rename_url(document), {"title": "Mine"}).status_code == 403
    document.refresh_from_db()
    assert document.title == "Lighthouse"


def test_another_teams_document_is_not_found(client, team, outsider):
    document = ready_document(team, title="Lighthouse")
    client.force_login(outsider)
    assert client.post(_rename_url(document), {"title": "Mine"}).status_code == 404


def test_the_api_renames_with_patch(key_client, team, document):
    response = key_client.patch(url(team, f"documents/{document.pk}/"),
                                {"title": "Vellmar Point light"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["title"] == "Vellmar Point light"
    assert key_client.get(url(team, f"documents/{document.pk}/")).json()["title"] == \
        "Vellmar Point light"


@pytest.mark.parametrize(("body", "field"), [({"title": ""}, "title"),
                                             ({"title": "x" * 301}, "title"),
                                             ({"title": "A", "status": "ready"}, "status")])
def test_the_api_refuses_bad_titles(key_client, team, document, body, field):
    response = key_client.patch(url(team, f"documents/{document.pk}/"), body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    document.refresh_from_db()
    assert document.title == "Lighthouse"


def test_the_api_needs_the_write_scope_and_the_team(api, team, document, read_key,
                                                    other_team_key):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {read_key[1]}")
    assert api.patch(url(team, f"documents/{document.pk}/"), {"title": "A"},
                     format="json").status_code == 403
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {other_team_key[1]}")
    assert api.patch(url(team, f"documents/{document.pk}/"), {"title": "A"},
                     format="json").status_code in (403, 404)
    document.refresh_from_db()
    assert document.title == "Lighthouse"


def test_ingest_title_keeps_a_given_title_else_the_files_else_the_file_name(team):
    document = ready_document(team, title="first line of prose")
    document.original_name = "cave-survey.final.txt"
    assert title_after_ingest(document, "") == "cave-survey.final"
    assert title_after_ingest(document, "Cave Survey 2023") == "Cave Survey 2023"
    document.title, document.title_edited = "Our survey", True
    assert title_after_ingest(document, "Cave Survey 2023") == "Our survey"


def test_a_prose_text_is_titled_by_its_file_name_and_a_rename_survives_reingest(team, member):
    def ingest(document):
        document.refresh_from_db()
        assert jobs.run(document.job.pk, document.job.celery_task_id) == "succeeded"
        document.refresh_from_db()
        return document

    data = (b"well adapted to the conditions of underground life, and as happy in\n"
            b"the dark as any creature of the surface. The cave fauna was surveyed in 1923.\n")
    document = services.upload(team, member, SimpleUploadedFile("cave-survey.txt", data)).document
    assert ingest(document).title == "cave-survey"
    rename(document, "Cave fauna, 1923")
    services.reingest(document, member)
    assert ingest(document).title == "Cave fauna, 1923"
