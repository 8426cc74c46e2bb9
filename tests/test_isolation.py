"""Team isolation: an outsider gets 404 on every team URL, with every method.

The URL list is read from the URLconf, so a new team URL is covered (or this test fails
until it says how to fill the URL's ids).
"""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from apps.api.keys import create_key
from apps.api.models import Batch
from apps.chat.models import Conversation, Message
from apps.collections.models import Collection
from apps.documents.models import Document
from apps.teams.models import Role
from apps.teams.services import create_invitation
from apps.writing.models import Section, WritingProject
from tests.factories import JobFactory, MembershipFactory

pytestmark = pytest.mark.django_db


def team_url_names() -> list[tuple[str, list[str]]]:
    """(namespaced name, its parameters) for every URL under t/<team_slug>/."""
    found = []

    def walk(patterns, prefix_has_team, namespace):
        for p in patterns:
            route = str(p.pattern)
            has_team = prefix_has_team or "<slug:team_slug>" in route
            if isinstance(p, URLResolver):
                ns = ":".join(filter(None, [namespace, p.namespace]))
                walk(p.url_patterns, has_team, ns)
            elif isinstance(p, URLPattern) and has_team and p.name:
                params = [k for k in p.pattern.regex.groupindex if k != "team_slug"]
                found.append((f"{namespace}:{p.name}" if namespace else p.name, params))

    walk(get_resolver().url_patterns, False, "")
    return found


@pytest.fixture
def victim(db):
    membership = MembershipFactory(role=Role.OWNER)
    team = membership.team
    other = MembershipFactory(team=team, role=Role.MEMBER)
    invitation, _ = create_invitation(team, membership.user, Role.MEMBER)
    document = Document.objects.create(team=team, title="Secret", original_name="s.txt",
                                       sha256="0" * 64, file="teams/s.txt")
    conversation = Conversation.objects.create(team=team, title="Secret talk")
    reply = Message.objects.create(conversation=conversation, role="assistant", status="failed")
    api_key, _ = create_key(team, membership.user, "Secret key", ["read", "write"])
    writing = WritingProject.objects.create(team=team, title="Secret text", instruction="x",
                                            target_words=300)
    section = Section.objects.create(project=writing, position=1, point="x", target_words=300)
    section_ids = {"pk": writing.pk, "section_pk": section.pk}
    batch = Batch.objects.create(team=team, kind="qa", total=0)
    collection = Collection.objects.create(team=team, name="Secret shelf", restricted=True)
    return {
        "team": team,
        "ids": {
            "jobs": {"pk": JobFactory(team=team).pk},
            "documents": {"pk": document.pk},
            "chat": {"pk": conversation.pk},
            "chat:message": {"pk": conversation.pk, "message_pk": reply.pk},
            "chat:retry": {"pk": conversation.pk, "message_pk": reply.pk},
            "chat:stream": {"pk": conversation.pk, "message_pk": reply.pk},
            "writing": {"pk": writing.pk},
            "batches": {"pk": batch.pk},
            "batches:download": {"pk": batch.pk, "fmt": "csv"},
            "compress": {"pk": JobFactory(team=team, kind="compress", params={"text": "x"}).pk},
            "writing:export": {"pk": writing.pk, "fmt": "pdf"},
            "chat:export": {"pk": conversation.pk, "fmt": "pdf"},
            "writing:section_edit": section_ids,
            "writing:section_delete": section_ids,
            "writing:section_move": section_ids,
            "writing:regenerate": section_ids,
            "writing:rewrite_from": section_ids,
            "api_keys:revoke": {"pk": api_key.pk},
            "teams:revoke_invitation": {"pk": invitation.pk},
            "teams:change_role": {"pk": other.pk},
            "teams:remove_member": {"pk": other.pk},
            "collections": {"pk": collection.pk},
            "collections:revoke": {"pk": collection.pk, "user_pk": other.user_id},
            "collections:move_document": {"pk": document.pk},
        },
    }


def _kwargs(name: str, params: list[str], victim) -> dict:
    kwargs = {"team_slug": victim["team"].slug}
    if params:
        ids = victim["ids"].get(name) or victim["ids"].get(name.split(":")[0])
        assert ids, f"tell this test which object fills {params} of {name}"
        kwargs.update(ids)
    return kwargs


def test_there_are_team_urls_to_check():
    names = {name for name, _ in team_url_names()}
    assert {"teams:dashboard", "teams:settings", "jobs:list", "jobs:detail",
            "documents:library", "documents:upload", "documents:detail",
            "chat:list", "chat:detail", "chat:stream"} <= names


@pytest.mark.parametrize("method", ["get", "post"])
def test_outsider_gets_404_on_every_team_url(client, victim, method):
    outsider = MembershipFactory(role=Role.OWNER).user  # has a team of their own
    client.force_login(outsider)
    for name, params in team_url_names():
        url = reverse(name, kwargs=_kwargs(name, params, victim))
        response = getattr(client, method)(url)
        assert response.status_code == 404, f"{method.upper()} {url}: {response.status_code}"
    # Nothing changed in the victim team.
    assert victim["team"].memberships.count() == 2
    assert victim["team"].documents.count() == 1
    assert victim["team"].conversations.count() == 1


def test_member_of_other_team_cannot_reach_objects_through_own_team(client, victim):
    """A job id of team B under team A's URL is 404 (scoped from the team, not looked up)."""
    own = MembershipFactory(role=Role.OWNER)
    client.force_login(own.user)
    job_pk = victim["ids"]["jobs"]["pk"]
    for name in ("jobs:detail", "jobs:progress", "jobs:cancel", "jobs:retry"):
        url = reverse(name, kwargs={"team_slug": own.team.slug, "pk": job_pk})
        method = client.get if name in ("jobs:detail", "jobs:progress") else client.post
        assert method(url).status_code == 404, url


def test_anonymous_is_sent_to_login(client, victim):
    for name, params in team_url_names():
        url = reverse(name, kwargs=_kwargs(name, params, victim))
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("account_login"))


def test_unknown_ids_are_404(client, team, owner):
    client.force_login(owner)
    assert client.get(reverse("jobs:detail", kwargs={"team_slug": team.slug, "pk": 999999})) \
        .status_code == 404
    assert client.get("/t/no-such-team/").status_code == 404
