"""Teams: creation, invitations, roles, removal, leaving — through the pages."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.teams.models import Invitation, Membership, Role, Team
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def _invite(client, team, role="member") -> str:
    response = client.post(reverse("teams:invite", kwargs={"team_slug": team.slug}),
                           {"role": role, "email": ""})
    assert response.status_code == 200
    link = re.search(r'value="(http://testserver/invite/[^"]+)"', response.content.decode())
    assert link, "the new invitation link is shown once"
    return link.group(1).removeprefix("http://testserver")


def test_create_team_makes_creator_owner(client_for):
    user = UserFactory()
    client = client_for(user)
    response = client.post(reverse("create_team"), {"name": "Legal research"})
    team = Team.objects.get(name="Legal research")
    assert response.status_code == 302
    assert response["Location"] == reverse("teams:settings", kwargs={"team_slug": team.slug})
    assert Membership.objects.get(team=team, user=user).role == Role.OWNER


def test_team_name_errors_are_shown_inline(client_for):
    client = client_for(UserFactory())
    response = client.post(reverse("create_team"), {"name": "  !!!  "})
    assert response.status_code == 200
    assert "Use at least one letter or digit." in response.content.decode()
    assert not Team.objects.exists()


def test_invitation_flow_and_single_use(client, team, owner):
    client.force_login(owner)
    path = _invite(client, team, "viewer")
    invitee = UserFactory()
    client.force_login(invitee)
    page = client.get(path)
    assert page.status_code == 200 and team.name in page.content.decode()
    response = client.post(path)
    assert response.status_code == 302
    assert Membership.objects.get(team=team, user=invitee).role == Role.VIEWER
    # A second person with the same link: used, clear page, no membership.
    other = UserFactory()
    client.force_login(other)
    response = client.post(path)
    assert response.status_code == 410
    assert "already been used" in response.content.decode()
    assert not Membership.objects.filter(team=team, user=other).exists()


def test_expired_and_revoked_and_unknown_invitations(client, team, owner):
    client.force_login(owner)
    path = _invite(client, team)
    Invitation.objects.update(expires_at=timezone.now() - timezone.timedelta(seconds=1))
    client.force_login(UserFactory())
    response = client.get(path)
    assert response.status_code == 410 and "expired" in response.content.decode()

    client.force_login(owner)
    path = _invite(client, team)
    invitation = Invitation.objects.filter(accepted_at=None, revoked_at=None).get(
        expires_at__gt=timezone.now())
    client.post(reverse("teams:revoke_invitation",
                        kwargs={"team_slug": team.slug, "pk": invitation.pk}))
    client.force_login(UserFactory())
    assert "withdrawn" in client.post(path).content.decode()

    response = client.get("/invite/not-a-real-token/")
    assert response.status_code == 404 and "not valid" in response.content.decode()


def test_anonymous_invitee_is_sent_to_sign_up_and_back(client, team, owner):
    client.force_login(owner)
    path = _invite(client, team)
    client.logout()
    page = client.get(path).content.decode()
    assert f"/accounts/signup/?next={path}" in page


@pytest.mark.parametrize("role, can_write, can_admin", [
    (Role.OWNER, True, True), (Role.ADMIN, True, True),
    (Role.MEMBER, True, False), (Role.VIEWER, False, False),
])
def test_role_rights(client, team, role, can_write, can_admin):
    user = MembershipFactory(team=team, role=role).user
    client.force_login(user)
    slug = {"team_slug": team.slug}
    # Everyone in the team reads.
    for name in ("teams:dashboard", "teams:settings", "jobs:list"):
        assert client.get(reverse(name, kwargs=slug)).status_code == 200
    # Writing (starting a conversation) needs member or above.
    response = client.post(reverse("chat:list", kwargs=slug), {"title": "Questions"})
    assert response.status_code == (200 if can_write else 403)  # 200: no document chosen
    # Administration (inviting, renaming) needs admin or above.
    response = client.post(reverse("teams:invite", kwargs=slug), {"role": "member"})
    assert response.status_code == (200 if can_admin else 403)
    response = client.post(reverse("teams:settings", kwargs=slug), {"name": "Renamed"})
    assert response.status_code == (302 if can_admin else 403)


def test_admin_cannot_touch_owner_and_owner_can(client, team, owner, admin, member):
    client.force_login(admin)
    owner_m = Membership.objects.get(team=team, user=owner)
    member_m = Membership.objects.get(team=team, user=member)
    client.post(reverse("teams:remove_member", kwargs={"team_slug": team.slug, "pk": owner_m.pk}))
    assert Membership.objects.filter(pk=owner_m.pk).exists()
    client.post(reverse("teams:change_role", kwargs={"team_slug": team.slug, "pk": member_m.pk}),
                {"role": "owner"})
    member_m.refresh_from_db()
    assert member_m.role == Role.MEMBER
    client.post(reverse("teams:remove_member", kwargs={"team_slug": team.slug, "pk": member_m.pk}))
    assert not Membership.objects.filter(pk=member_m.pk).exists()


def test_last_owner_cannot_leave_but_can_after_handing_over(client, team, owner, member):
    client.force_login(owner)
    leave = reverse("teams:leave", kwargs={"team_slug": team.slug})
    response = client.post(leave, follow=True)
    assert "last owner" in response.content.decode()
    assert Membership.objects.filter(team=team, user=owner).exists()
    member_m = Membership.objects.get(team=team, user=member)
    client.post(reverse("teams:change_role", kwargs={"team_slug": team.slug, "pk": member_m.pk}),
                {"role": "owner"})
    client.post(leave)
    assert not Membership.objects.filter(team=team, user=owner).exists()
    # Gone from the team means 404 now.
    assert client.get(reverse("teams:dashboard", kwargs={"team_slug": team.slug})).status_code \
        == 404


def test_invalid_role_is_refused(client, team, owner, member):
    client.force_login(owner)
    member_m = Membership.objects.get(team=team, user=member)
    response = client.post(
        reverse("teams:change_role", kwargs={"team_slug": team.slug, "pk": member_m.pk}),
        {"role": "emperor"}, follow=True)
    assert "Choose one of the listed roles." in response.content.decode()
    member_m.refresh_from_db()
    assert member_m.role == Role.MEMBER


def test_team_switcher_lists_only_my_teams(client, team, owner):
    other = MembershipFactory(role=Role.OWNER).team
    client.force_login(owner)
    page = client.get(reverse("teams:dashboard", kwargs={"team_slug": team.slug})).content.decode()
    assert team.name in page and other.name not in page


# -- API keys end with their maker's membership; the last owner is kept under a lock ----------


def _key_works(team, token: str) -> bool:
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api.get(f"/api/v1/teams/{team.slug}/batches/").status_code == 200


def test_removing_a_member_revokes_the_keys_they_made_and_says_so(client, team, owner, admin):
    from apps.api import keys
    from apps.api.models import ApiKey

    _, theirs = keys.create_key(team, admin, "their script", ["read"])
    _, mine = keys.create_key(team, owner, "my script", ["read"])
    other_team = MembershipFactory(user=admin, role=Role.OWNER).team
    _, elsewhere = keys.create_key(other_team, admin, "other team", ["read"])
    assert _key_works(team, theirs) and _key_works(team, mine)

    client.force_login(owner)
    page = client.get(reverse("teams:settings", kwargs={"team_slug": team.slug})).content.decode()
    assert "Removing a member revokes the API keys they made for this team." in page
    target = Membership.objects.get(team=team, user=admin)
    response = client.post(reverse("teams:remove_member",
                                   kwargs={"team_slug": team.slug, "pk": target.pk}), follow=True)
    assert "1 API key they made for this team was revoked." in response.content.decode()
    assert not _key_works(team, theirs)
    assert _key_works(team, mine)  # another member's key stays
    assert _key_works(other_team, elsewhere)  # their keys of other teams stay
    assert ApiKey.objects.get(name="their script").revoked_at is not None


def test_leaving_revokes_the_leavers_keys_and_the_page_says_so_first(client, team, owner, member):
    from apps.api import keys

    _, token = keys.create_key(team, member, "cron", ["read"])
    client.force_login(member)
    page = client.get(reverse("teams:settings", kwargs={"team_slug": team.slug})).content.decode()
    assert "the API keys you made for it are revoked" in page
    response = client.post(reverse("teams:leave", kwargs={"team_slug": team.slug}), follow=True)
    assert "1 API key you made for this team was revoked." in response.content.decode()
    assert not _key_works(team, token)


def test_the_migration_revokes_keys_of_people_who_already_left(team, owner, member):
    from importlib import import_module

    from django.apps import apps as registry

    from apps.api import keys
    from apps.api.models import ApiKey

    _, kept = keys.create_key(team, owner, "owner's", ["read"])
    _, stale = keys.create_key(team, member, "former member's", ["read"])
    Membership.objects.filter(team=team, user=member).delete()  # left before keys were revoked
    migration = import_module("apps.api.migrations.0002_revoke_keys_of_former_members")
    migration.revoke_keys_of_former_members(registry, None)
    assert ApiKey.objects.get(name="former member's").revoked_at is not None
    assert ApiKey.objects.get(name="owner's").revoked_at is None


def _at_once(*actions) -> list:
    """Run each action in its own thread and database connection, all released together;
    each returns its result or the TeamError it raised."""
    import threading

    from django.db import connection

    from apps.teams import services

    barrier, results = threading.Barrier(len(actions)), [None] * len(actions)

    def run(index, action):
        try:
            barrier.wait()
            results[index] = action()
        except services.TeamError as err:
            results[index] = err
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("second", ["the other leaves", "the first removes the other",
                                    "the first demotes the other"])
def test_two_owners_at_once_cannot_leave_a_team_without_owner(monkeypatch, second):
    """Each thread counts the owners, then waits a little before it acts: without the team
    row lock both would count two owners and both go. With it the second waits, counts one
    owner and is refused."""
    import time

    from apps.teams import services

    counted = services._owner_count

    def slow_count(team_id):
        count = counted(team_id)
        time.sleep(0.5)  # the race window, made wide
        return count

    monkeypatch.setattr(services, "_owner_count", slow_count)
    first = MembershipFactory(role=Role.OWNER)
    other = MembershipFactory(team=first.team, role=Role.OWNER)
    # While the first owner leaves, the other owner goes too, one way or another.
    actions = {
        "the other leaves": lambda: services.leave_team(other),
        "the first removes the other": lambda: services.remove_member(first, other),
        "the first demotes the other": lambda: services.change_role(first, other, Role.MEMBER),
    }
    results = _at_once(lambda: services.leave_team(first), actions[second])
    refused = [r for r in results if isinstance(r, services.TeamError)]
    assert len(refused) == 1, results
    owners = Membership.objects.filter(team=first.team, role=Role.OWNER)
    assert owners.count() == 1
