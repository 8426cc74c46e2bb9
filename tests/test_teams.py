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
    # Writing (running a job) needs member or above.
    response = client.post(reverse("jobs:list", kwargs=slug), {"text": "Hello there."})
    assert response.status_code == (302 if can_write else 403)
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
