"""API key verbs: create (the secret is returned once), authenticate, revoke."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.db.models import Exists, OuterRef
from django.utils import timezone

from apps.api.models import ApiKey, Scope
from apps.teams.models import hash_token

KEY_PREFIX = "sk_live_"
# last_used_at is written at most this often, so a busy key does not write on every request.
LAST_USED_RESOLUTION = timedelta(seconds=60)


class InvalidKey(Exception):
    """A key that cannot authenticate; the message says why."""


def create_key(team, user, name: str, scopes: list[str], collections=()) -> tuple[ApiKey, str]:
    """Make a key; returns the row and the full secret, which is never stored or shown again.
    ``collections`` (of ``team``): the key reads only their documents; none: the whole team."""
    scopes = sorted({str(s) for s in scopes} | {Scope.READ})  # every key can read
    unknown = set(scopes) - set(Scope.values)
    if unknown:
        raise ValueError(f"Unknown scopes: {', '.join(sorted(unknown))}")
    if any(c.team_id != team.pk for c in collections):
        raise ValueError("A key can be scoped only to its own team's collections.")
    ident = secrets.token_hex(4)
    token = f"{KEY_PREFIX}{ident}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(team=team, name=name.strip()[:80] or "API key",
                                prefix=f"{KEY_PREFIX}{ident}", secret_hash=hash_token(token),
                                scopes=scopes, created_by=user)
    key.collections.set(collections)
    return key, token


def authenticate(token: str) -> ApiKey:
    # `scoped`: whether the key is limited to collections (apps.collections.access), read in
    # the same query. secret_hash is unique: a slice, not first(), whose ORDER BY costs a
    # sort to compile on every API request.
    key = next(iter(ApiKey.objects.select_related("team", "created_by").annotate(
        scoped=Exists(ApiKey.collections.through.objects.filter(apikey=OuterRef("pk")))
    ).filter(secret_hash=hash_token(token.strip()))[:1]), None)
    if key is None:
        raise InvalidKey("Invalid API key.")
    if key.revoked_at is not None:
        raise InvalidKey(f"This API key ({key.prefix}) was revoked.")
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


def revoke(key: ApiKey) -> ApiKey:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return key


def revoke_keys_made_by(team_id: int, user_id: int) -> int:
    """Revoke the live keys a person made for a team (they left it or were removed)."""
    return ApiKey.objects.filter(team_id=team_id, created_by_id=user_id,
                                 revoked_at=None).update(revoked_at=timezone.now())
