from __future__ import annotations

import pytest

from apps.teams.models import Role
from tests.factories import MembershipFactory, TeamFactory


@pytest.fixture
def team(db):
    return TeamFactory()


def _member(team, role):
    return MembershipFactory(team=team, role=role).user


@pytest.fixture
def owner(team):
    return _member(team, Role.OWNER)


@pytest.fixture
def admin(team):
    return _member(team, Role.ADMIN)


@pytest.fixture
def member(team):
    return _member(team, Role.MEMBER)


@pytest.fixture
def viewer(team):
    return _member(team, Role.VIEWER)


@pytest.fixture
def outsider(db):
    """A signed-up user with a team of their own, but not in `team`."""
    return MembershipFactory(role=Role.OWNER).user


@pytest.fixture
def client_for(client):
    def login(user):
        client.force_login(user)
        return client

    return login


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Each test stores uploads in its own folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def pytest_configure(config):
    """The test session's explicit step: the embedded Postgres and Redis where the settings
    use them, the development secret key, and the cache prefix for the processes it starts."""
    import os

    from django.conf import settings

    from apps import stack

    stack.start_for(settings)
    os.environ.setdefault("TEST_CACHE_PREFIX", settings.CACHES["default"]["KEY_PREFIX"])


def pytest_sessionfinish(session, exitstatus):
    """Stop the embedded Postgres and Redis if this test run started them."""
    from apps import stack

    stack.stop_all(only=set(stack.started_here))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    """The fault test restarts the embedded Redis this session's own clients use: it runs
    last, so that no later test meets connections it cut."""
    items.sort(key=lambda item: item.nodeid.startswith("tests/test_faults.py"))
