from __future__ import annotations

from django import template

from apps.api.ui import ApiKeyForm

register = template.Library()


@register.inclusion_tag("api/keys_card.html", takes_context=True)
def api_keys_card(context):
    """The API keys card of the team settings page (admins and owners manage keys)."""
    team, membership = context.get("current_team"), context.get("current_membership")
    return {
        "current_team": team, "current_membership": membership,
        "csrf_token": context.get("csrf_token"),
        "api_keys": team.api_keys.select_related("created_by").prefetch_related(
            "collections")[:100] if team else [],
        "form": ApiKeyForm(team=team) if team else None,
    }
