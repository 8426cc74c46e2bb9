"""Team verbs: create, invite, accept, change roles, remove, leave."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from apps.api.keys import revoke_keys_made_by
from apps.teams.models import ROLE_RANK, Invitation, Membership, Role, Team, hash_token


class TeamError(Exception):
    """A team operation that is not allowed; the message is shown to the user."""


def _unique_slug(name: str) -> str:
    base = slugify(name)[:60] or "team"
    slug, n = base, 1
    while Team.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


@transaction.atomic
def create_team(name: str, owner) -> Team:
    team = Team.objects.create(name=name.strip(), slug=_unique_slug(name))
    Membership.objects.create(team=team, user=owner, role=Role.OWNER)
    return team


def rename_team(team: Team, name: str) -> Team:
    team.name = name.strip()
    team.save(update_fields=["name"])
    return team


def create_invitation(team: Team, created_by, role: str, email: str = "") -> tuple[Invitation, str]:
    """Return the invitation and its secret token (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        team=team,
        role=role,
        email=email,
        token_hash=hash_token(token),
        created_by=created_by,
        expires_at=timezone.now() + settings.INVITATION_TTL,
    )
    return invitation, token


def find_invitation(token: str) -> Invitation | None:
    return Invitation.objects.select_related("team").filter(token_hash=hash_token(token)).first()


def invitation_problem(invitation: Invitation | None) -> str | None:
    """Why this invitation cannot be accepted, in words for the user; None if it can."""
    if invitation is None:
        return "This invitation link is not valid. Ask a team admin for a new one."
    if invitation.accepted_at:
        return "This invitation has already been used. Invitation links work once."
    if invitation.revoked_at:
        return "This invitation was withdrawn by a team admin."
    if invitation.is_expired:
        return "This invitation has expired. Ask a team admin for a new link."
    return None


def accept_invitation(token: str, user) -> Membership:
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update()
            .select_related("team")
            .filter(token_hash=hash_token(token))
            .first()
        )
        problem = invitation_problem(invitation)
        if problem:
            raise TeamError(problem)
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        membership = Membership.objects.filter(team=invitation.team, user=user).first()
        if membership is None:
            try:
                with transaction.atomic():
                    membership = Membership.objects.create(
                        team=invitation.team, user=user, role=invitation.role
                    )
            except IntegrityError:  # accepted twice at once by the same user
                membership = Membership.objects.get(team=invitation.team, user=user)
        elif ROLE_RANK[Role(invitation.role)] > ROLE_RANK[Role(membership.role)]:
            membership.role = invitation.role
            membership.save(update_fields=["role"])
        return membership


def revoke_invitation(invitation: Invitation) -> None:
    if invitation.state == "open":
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])


def _owner_count(team_id: int) -> int:
    return Membership.objects.filter(team_id=team_id, role=Role.OWNER).count()


def _locked(*memberships: Membership) -> list[Membership | None]:
    """Lock the team row, then read the memberships afresh. Every change that could take
    the last owner away (role change, removal, leaving) queues on that lock, so two owners
    leaving at once cannot both see the other one still there."""
    Team.objects.select_for_update().filter(pk=memberships[0].team_id).first()
    fresh = Membership.objects.filter(pk__in=[m.pk for m in memberships]).in_bulk()
    return [fresh.get(m.pk) for m in memberships]


def _gone(membership: Membership) -> int:
    """Delete the membership and revoke the API keys its person made for this team: a key
    must not outlive the access of the person who made it. Returns the keys revoked."""

    revoked = revoke_keys_made_by(membership.team_id, membership.user_id)
    membership.delete()
    return revoked


def change_role(actor: Membership, target: Membership, role: str) -> Membership:
    with transaction.atomic():
        actor, current = _locked(actor, target)
        if actor is None or current is None:
            raise TeamError("That membership has just changed; reload the page.")
        if Role.OWNER in (role, current.role) and actor.role != Role.OWNER:
            raise TeamError("Only an owner can grant or take away the owner role.")
        if (current.role == Role.OWNER and role != Role.OWNER
                and _owner_count(current.team_id) == 1):
            raise TeamError("A team needs at least one owner. Make someone else owner first.")
        current.role = role
        current.save(update_fields=["role"])
    target.role = role
    return current


def remove_member(actor: Membership, target: Membership) -> int:
    """Remove `target`; returns how many of their API keys were revoked."""
    if target.pk == actor.pk:
        raise TeamError("Use “Leave team” to remove yourself.")
    with transaction.atomic():
        actor, current = _locked(actor, target)
        if current is None:
            raise TeamError("That person has already left the team.")
        if actor is None:
            raise TeamError("You are no longer a member of this team.")
        if current.role == Role.OWNER and actor.role != Role.OWNER:
            raise TeamError("Only an owner can remove an owner.")
        if current.role == Role.OWNER and _owner_count(current.team_id) == 1:
            raise TeamError("A team needs at least one owner.")
        return _gone(current)


def leave_team(membership: Membership) -> int:
    """Leave; returns how many of the leaver's API keys were revoked."""
    with transaction.atomic():
        (current,) = _locked(membership)
        if current is None:
            return 0  # already gone (a second click)
        if current.role == Role.OWNER and _owner_count(current.team_id) == 1:
            raise TeamError(
                "You are the last owner. Make another member owner before you leave."
            )
        return _gone(current)
