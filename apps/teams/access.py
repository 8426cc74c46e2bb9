"""The one access helper for the team boundary.

Every team-scoped view (UI and API) resolves the team through `resolve_team`: a user who
is not a member gets 404, as if the team did not exist; a member below the required role
gets 403. Querysets for team-owned rows then start from `request.team`.
"""

from __future__ import annotations

from functools import wraps

from django.core.exceptions import PermissionDenied
from django.http import Http404

from apps.teams.models import Membership, Role


def resolve_team(user, slug: str, minimum: str = Role.VIEWER) -> Membership:
    if not user.is_authenticated:
        raise Http404("No such team")
    membership = (
        Membership.objects.select_related("team")
        .filter(team__slug=slug, user=user)
        .first()
    )
    if membership is None:
        raise Http404("No such team")
    if not membership.has_role(minimum):
        raise PermissionDenied(f"This needs the {Role(minimum).label.lower()} role or higher.")
    return membership


def team_view(minimum: str = Role.VIEWER, *, write_minimum: str | None = None):
    """Decorate a view taking `team_slug`; sets request.team and request.membership.

    `write_minimum` applies to unsafe methods (POST, ...), so a page that viewers may read
    but only members may change is one view with two thresholds.
    """

    def decorator(view):
        @wraps(view)
        def wrapper(request, team_slug: str, *args, **kwargs):
            needed = minimum
            if write_minimum and request.method not in ("GET", "HEAD", "OPTIONS"):
                needed = write_minimum
            if not request.user.is_authenticated:
                from django.contrib.auth.views import redirect_to_login

                return redirect_to_login(request.get_full_path())
            membership = resolve_team(request.user, team_slug, needed)
            request.team = membership.team
            request.membership = membership
            request.session["team_slug"] = membership.team.slug
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def resolve_team_for_api(principal, slug: str, write: bool = False):
    return resolve_for_api(principal, slug, write)[0]


def resolve_for_api(principal, slug: str, write: bool = False):
    """(team, membership) of an API request, for a signed-in user (session: the membership)
    or a team API key (no membership).

    A user: member roles apply as in the UI (viewers read; members and up write). A key:
    bound to one team (any other slug is 404, as if it did not exist) and its scopes apply
    (a read key gets 403 on writes). Anything else is 404.
    """

    key_team_id = getattr(principal, "team_id", None)
    if key_team_id is not None and hasattr(principal, "has_scope"):  # an API key
        # The key's own team, read with the key in this request (keys.authenticate), so no
        # second query; another slug is 404 as before.
        team = principal.team
        if team.slug != slug:
            raise Http404("No such team")
        if write and not principal.has_scope("write"):
            raise PermissionDenied("This API key has read scope only; this needs write.")
        return team, None
    if principal is None:
        raise Http404("No such team")
    membership = resolve_team(principal, slug, Role.MEMBER if write else Role.VIEWER)
    return membership.team, membership
