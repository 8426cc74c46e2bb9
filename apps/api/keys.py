"""API key verbs: create (the secret is returned once), authenticate, revoke."""

from __future__ import annotations

import functools
import secrets
from datetime import timedelta

from django.db import connection
from django.utils import timezone

from apps.accounts.models import User
from apps.api.models import ApiKey, Scope
from apps.teams.models import Team, hash_token

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
    """The live key of ``token``, with its team, its creator and ``scoped`` (whether it is
    limited to collections, for apps.collections.access) read in one query."""
    key = _lookup(hash_token(token.strip()))
    if key is None:
        raise InvalidKey("Invalid API key.")
    if key.revoked_at is not None:
        raise InvalidKey(f"This API key ({key.prefix}) was revoked.")
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


# Every API request looks its key up, and Django compiles a queryset anew on each call (a
# third of a small request's CPU for this three-table select). The statement never changes
# shape, so it is written once per process from the models' own tables and columns.
_ROW_MODELS = (ApiKey, Team, User)


@functools.cache
def _lookup_sql() -> str:
    # Only the models' own names, quoted, go into the text; the hash is a parameter.
    quote = connection.ops.quote_name
    through = ApiKey.collections.through._meta
    columns = ", ".join(f"{alias}.{quote(f.column)}"
                        for alias, model in zip("ktu", _ROW_MODELS, strict=True)
                        for f in model._meta.concrete_fields)
    return (
        f"SELECT {columns}, EXISTS (SELECT 1 FROM {quote(through.db_table)} c WHERE "  # noqa: S608
        f"c.{quote(through.get_field('apikey').column)} = k.{quote(ApiKey._meta.pk.column)}) "
        f"FROM {quote(ApiKey._meta.db_table)} k "
        f"JOIN {quote(Team._meta.db_table)} t ON t.{quote(Team._meta.pk.column)} = "
        f"k.{quote(ApiKey._meta.get_field('team').column)} "
        f"LEFT JOIN {quote(User._meta.db_table)} u ON u.{quote(User._meta.pk.column)} = "
        f"k.{quote(ApiKey._meta.get_field('created_by').column)} "
        f"WHERE k.{quote(ApiKey._meta.get_field('secret_hash').column)} = %s"
    )


def _lookup(secret_hash: str) -> ApiKey | None:
    with connection.cursor() as cursor:
        cursor.execute(_lookup_sql(), [secret_hash])
        row = cursor.fetchone()
    if row is None:
        return None
    key, team, user = _instances(row)
    ApiKey.team.field.set_cached_value(key, team)
    ApiKey.created_by.field.set_cached_value(key, user)
    key.scoped = bool(row[-1])
    return key


def _instances(row: tuple) -> list:
    """The row's ApiKey, Team and User (None for a key whose creator was deleted), each value
    through its field's database converters, as a queryset would."""
    made, start = [], 0
    for model, names, converters in _row_layout():
        values = list(row[start:start + len(names)])
        start += len(names)
        for i, column, convert in converters:
            if values[i] is not None:
                values[i] = convert(values[i], column, connection)
        made.append(None if values[0] is None else model.from_db(connection.alias, names,
                                                                    values))
    return made


@functools.cache
def _row_layout() -> list:
    """Per model of the row: its field names and the converters of the fields that have any."""
    layout = []
    for model in _ROW_MODELS:
        fields = model._meta.concrete_fields
        converters = []
        for i, field in enumerate(fields):
            column = field.get_col(model._meta.db_table)
            converters += [(i, column, convert) for convert in (
                connection.ops.get_db_converters(column) + column.get_db_converters(connection))]
        layout.append((model, [f.attname for f in fields], converters))
    return layout


def revoke(key: ApiKey) -> ApiKey:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return key


def revoke_keys_made_by(team_id: int, user_id: int) -> int:
    """Revoke the live keys a person made for a team (they left it or were removed)."""
    return ApiKey.objects.filter(team_id=team_id, created_by_id=user_id,
                                 revoked_at=None).update(revoked_at=timezone.now())
