"""Writing from a collection (#20), end to end with the embedded model: a member picks an
open collection in the new-project form; the project is planned from what its documents
hold and written with citations of them only — never of a restricted collection's document
the member may not read — and the page lists them. The collection is read when the text is
written: a document added later is a source of the next write. Through the API, a write
item with a collection returns its text with numbered references to that collection only.

Short texts (WRITING_COLLECTION_WORDS, default 150) keep this to a few minutes on 2 cores.
"""

from __future__ import annotations

import os
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from apps.api import keys
from apps.collections import services as collections
from apps.documents.models import DocStatus
from apps.jobs import services as jobs
from apps.teams.models import Role
from apps.writing import services
from apps.writing.document import references
from apps.writing.models import ProjectStatus, WritingProject
from tests.factories import MembershipFactory
from tests.qa.conftest import Spy
from tests.test_writing_report import HARBOUR, NATURE, TOWN

pytestmark = pytest.mark.django_db

WORDS = int(os.environ.get("WRITING_COLLECTION_WORDS", "150"))
SECRET = """# Board minutes

## The merger

The board approved the merger of the Altmark harbour with Halvorsen Shipping. The codename
of the deal is Bluefinch. The price is forty million crowns.
"""


def _into(team, owner, collection, name: str, text: str):
    """Uploaded into ``collection`` and ingested."""
    outcome = collections.upload(team, owner, owner, SimpleUploadedFile(name, text.encode()),
                                 collection)
    document = outcome.document
    assert jobs.run(document.job.pk, document.job.celery_task_id) == "succeeded"
    document.refresh_from_db()
    assert document.status == DocStatus.READY
    return document


@pytest.fixture
def shelves(team, owner):
    altmark = collections.create(team, "Altmark")
    board = collections.create(team, "Board", restricted=True)
    return {"altmark": altmark, "board": board,
            "harbour": _into(team, owner, altmark, "harbour.md", HARBOUR),
            "town": _into(team, owner, altmark, "town.md", TOWN),
            "secret": _into(team, owner, board, "board.md", SECRET)}


def test_a_project_writes_from_its_collection_and_cites_only_it(client, team, owner, member,
                                                                  shelves, monkeypatch):
    from workers.llm import get_backend

    altmark, board = shelves["altmark"], shelves["board"]
    inside = {shelves["harbour"].pk: shelves["harbour"], shelves["town"].pk: shelves["town"]}
    client.force_login(member)
    response = client.post(reverse("writing:list", kwargs={"team_slug": team.slug}), {
        "instruction": "Write a short report on the harbour town of Altmark.",
        "target_words": str(WORDS), "title": "Altmark", "collection": altmark.pk})
    project = WritingProject.objects.get()
    assert response.status_code == 302 and project.collection == altmark
    assert not project.documents.exists()  # nothing picked by hand: the collection is read

    spy = Spy(get_backend())
    monkeypatch.setattr("apps.writing.services.get_backend", lambda: spy)
    project = services.start_write(project, member)
    assert jobs.run(project.job.pk, project.job.celery_task_id) == "succeeded", \
        project.job.error
    project.refresh_from_db()
    assert project.status == ProjectStatus.DONE
    assert project.plan_source == "sources"  # planned from the collection's headings
    assert set(project.drawn.values_list("pk", flat=True)) == set(inside)
    sections = list(project.sections.all())
    assert sum(s.words for s in sections) > WORDS // 3
    # Evidence per section came from the collection: its passages are in the prompts; the
    # restricted collection's document reached none (the member may not read it).
    prompts = [m["content"] for sent in spy.sent for m in sent]
    assert any("Kessler Marine Works" in p or "12,000 inhabitants" in p or
               "second quay" in p for p in prompts)
    assert not any("Bluefinch" in p or "Halvorsen" in p for p in prompts)
    # Whatever the small model got cited is an exact span of the collection's documents
    # (how many sentences it supports is the citing tests' business, not this one's).
    for c in (c for s in sections for c in s.citations):
        assert inside[c["document_id"]].text[c["start"]:c["end"]] == c["quote"]

    # The reference list resolves the documents drawn from the collection (linked to the
    # viewer, with their titles), as it does a project's hand-picked ones.
    first, harbour = sections[0], shelves["harbour"]
    quote = "The work cost 4.2 million euros."
    start = harbour.text.index(quote)
    first.text, first.citations = "The works cost 4.2 million euros [1].", [
        {"document_id": harbour.pk, "start": start, "end": start + len(quote), "quote": quote}]
    first.save(update_fields=["text", "citations"])
    page = client.get(reverse("writing:detail", kwargs={"team_slug": team.slug,
                                                        "pk": project.pk})).content.decode()
    assert 'data-testid="references"' in page and "Board" not in page
    linked = {int(pk) for pk in re.findall(r'/documents/(\d+)/\?start=', page)}
    assert linked and linked <= set(inside) and harbour.pk in linked
    refs = references(project, [first])
    assert [(r["document_id"], r["live"], r["title"]) for r in refs] == [
        (harbour.pk, True, harbour.title)]

    # Read when written: a document added to the collection later is a source of the next
    # write; the board's stays out of it whoever asks.
    nature = _into(team, owner, altmark, "nature.md", NATURE)
    assert {d.pk for d in services.sources(project, member)} == {*inside, nature.pk}
    # A drawn document moved into the restricted collection hides the text from the member
    # (it quotes it), as a hidden reference document does.
    collections.move(team, owner, shelves["harbour"], board)
    assert client.get(reverse("writing:detail", kwargs={
        "team_slug": team.slug, "pk": project.pk})).status_code == 404


def test_an_api_write_item_with_a_collection_cites_only_it(team, owner, shelves):
    altmark = shelves["altmark"]
    inside = {shelves["harbour"].pk, shelves["town"].pk}
    _, token = keys.create_key(team, owner, "altmark", ["read", "write"],
                               collections=[altmark])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    made = api.post(f"/api/v1/teams/{team.slug}/batches/", {"kind": "write", "items": [
        {"instruction": "Write a short report on the harbour of Altmark.",
         "target_words": WORDS, "collection": altmark.pk}]}, format="json")
    assert made.status_code == 201, made.json()
    item = team.batches.get().items.get()
    assert jobs.run(item.job.pk, item.job.celery_task_id) == "succeeded", item.job.error
    result = api.get(f"/api/v1/teams/{team.slug}/batches/{made.json()['id']}/results/"
                     ).json()["results"][0]
    assert result["status"] == "succeeded", result
    out = result["result"]
    assert set(out["documents"]) == inside and out["words"] > WORDS // 3
    # Whatever got cited (the small model cites little) is an exact span of the collection.
    titles = {d.pk: d.title for d in (shelves["harbour"], shelves["town"])}
    texts = {d.pk: d.text for d in (shelves["harbour"], shelves["town"])}
    for ref in out["references"]:
        assert ref["document_id"] in inside and ref["title"] == titles[ref["document_id"]]
        assert texts[ref["document_id"]][ref["start"]:ref["end"]] == ref["quote"]
        assert f"[{ref['n']}]" in out["text"]
    assert "Bluefinch" not in out["text"]
    # Its text quotes what it was written from: a member who may not read one of those (a
    # document moved into a restricted collection since), or the collection, no longer sees
    # the batch.
    batch = f"/api/v1/teams/{team.slug}/batches/{made.json()['id']}/"
    member_api = APIClient()
    member_api.force_login(MembershipFactory(team=team, role=Role.MEMBER).user)
    assert member_api.get(batch).status_code == 200
    collections.move(team, owner, shelves["town"], shelves["board"])
    assert member_api.get(batch).status_code == 404
    collections.move(team, owner, shelves["town"], altmark)
    assert member_api.get(batch).status_code == 200
    collections.set_restricted(altmark, True)
    assert member_api.get(batch).status_code == 404
