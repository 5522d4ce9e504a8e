"""Fixtures of the /ws tests (test_live_ws*.py ask for them with ``usefixtures``): one
signed-in user per test, no session counted from an earlier test (``media`` is the
suite's, tests/conftest.py).
Not autouse: the unit tests here need no database, and the browser tests sign in their own
users."""

from __future__ import annotations

import pytest

from tests.conftest import session_cookie_header
from tests.live.ws import HEADERS, ORIGIN


@pytest.fixture
def signed_in(transactional_db):
    """Every socket in these tests belongs to one signed-in user."""
    from tests.factories import make_user

    user = make_user("speaker")
    HEADERS[:] = [*ORIGIN, session_cookie_header(user)]
    yield user
    HEADERS.clear()


@pytest.fixture
def no_leftover_sessions(settings):
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(match="live:sessions:*"):
        client.delete(key)
