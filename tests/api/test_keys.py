"""API key lookup: the hand-written statement (apps.api.keys) gives what the ORM gives."""

from __future__ import annotations

import pytest

from apps.api import keys
from apps.api.models import ApiKey

pytestmark = pytest.mark.django_db


def test_a_key_authenticates_as_its_own_rows_whole_or_scoped_or_without_its_creator(
        write_key, team, owner):
    # The lookup is hand-written SQL (apps.api.keys): it must give what the ORM gives.
    from apps.collections.models import Collection

    key, token = write_key
    found = keys.authenticate(f"  {token}\n")
    stored = ApiKey.objects.select_related("team", "created_by").get(pk=key.pk)
    for mine, theirs in ((found, stored), (found.team, stored.team),
                         (found.created_by, stored.created_by)):
        assert type(mine) is type(theirs) and mine.__dict__.keys() >= {
            f.attname for f in type(mine)._meta.concrete_fields}
        assert all(getattr(mine, f.attname) == getattr(theirs, f.attname)
                   for f in type(mine)._meta.concrete_fields if f.attname != "last_used_at")
    assert found.scopes == ["read", "write"] and found.has_scope("write")
    assert found.scoped is False
    key.collections.set([Collection.objects.create(team=team, name="Contracts")])
    owner.delete()  # the key outlives its creator (SET_NULL)
    found = keys.authenticate(token)
    assert found.scoped is True and found.created_by is None and found.team == team
    with pytest.raises(keys.InvalidKey, match="Invalid API key"):
        keys.authenticate(token + "x")
