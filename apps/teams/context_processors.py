from __future__ import annotations


def teams(request):
    """The signed-in user's teams for the team switcher, and the current team if any."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "my_teams": user.teams.order_by("name"),
        "current_team": getattr(request, "team", None),
        "current_membership": getattr(request, "membership", None),
    }
