from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# The shared evaluation recordings live beside the checkout (../shared/eval); EVAL_DIR overrides.
EVAL_DIR = Path(os.environ.get("EVAL_DIR") or REPO_ROOT.parent / "shared" / "eval")


def pytest_configure(config) -> None:
    # The pages are in Korean from the compiled catalogues (build output: `make install`
    # compiles them); a bare `pytest` in a fresh checkout compiles them here, and it is a
    # no-op while every .mo is newer than its .po. Servers the tests start read them too.
    from sttproject.catalogues import compile_all

    if compile_all():
        # Django may have read the catalogues before they existed (at setup); it caches what
        # it found, so it is told to read them again, as when LOCALE_PATHS changes.
        import django.test.signals  # noqa: F401 - its receivers reset the translations
        from django.conf import settings
        from django.core.signals import setting_changed

        setting_changed.send(
            sender=None, setting="LOCALE_PATHS", value=settings.LOCALE_PATHS, enter=False
        )


def load_manifest() -> list[dict]:
    path = EVAL_DIR / "manifest.jsonl"
    if not path.exists():
        raise RuntimeError(f"evaluation set not found at {EVAL_DIR}; set EVAL_DIR")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def eval_manifest() -> list[dict]:
    return load_manifest()


@pytest.fixture(scope="session")
def eval_clip(eval_manifest):
    """Look up an evaluation clip by id: returns (absolute path, manifest entry)."""
    by_id = {entry["id"]: entry for entry in eval_manifest}

    def lookup(clip_id: str) -> tuple[Path, dict]:
        entry = by_id[clip_id]
        return EVAL_DIR / entry["file"], entry

    return lookup


@pytest.fixture
def cast(db):
    """The fixed cast for permission tests: an owner, another user and a staff member."""
    from tests.factories import make_user

    class Cast:
        owner = make_user("owner")
        other = make_user("other")
        staff = make_user("staff", staff=True)

    return Cast


@pytest.fixture
def media(settings, tmp_path):
    """Stored audio (uploads, live recordings) under a folder of the test's own."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def owner(db):
    from tests.factories import make_user

    return make_user("owner")


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


def session_cookie_header(user) -> tuple[bytes, bytes]:
    """A ``cookie`` header that signs ``user`` in, for WebSocket tests."""
    from django.conf import settings
    from django.test import Client

    browser = Client()
    browser.force_login(user)
    value = browser.cookies[settings.SESSION_COOKIE_NAME].value
    return b"cookie", f"{settings.SESSION_COOKIE_NAME}={value}".encode()


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Every test starts with an empty Django cache.

    The cache (upload rate-limit counters) lives in Redis: it is shared with the web servers
    that tests start and outlives a test run, while user ids restart with each test database.
    Only the cache's own keys are deleted; the broker, the channel layer and worker heartbeats
    share that Redis database, so ``cache.clear()`` (FLUSHDB) is not an option.
    """
    import redis
    from django.conf import settings

    prefix = settings.CACHES["default"].get("KEY_PREFIX", "")
    if not prefix:
        return
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    except redis.ConnectionError:
        pass  # tests that need Redis fail on their own, naming it
    finally:
        client.close()


@pytest.fixture(scope="session")
def django_db_modify_db_settings():
    """One test database per pytest run, so two runs on one server do not drop each other's."""
    from django.conf import settings

    default = settings.DATABASES["default"]
    default.setdefault("TEST", {})["NAME"] = f"test_{default['NAME']}_{os.getpid()}"


@pytest.fixture(scope="module")
def stt_worker(django_db_blocker, django_db_setup):
    """A real Celery worker on queue stt, for the tests of one module."""
    from tests.celery_workers import running_worker

    with django_db_blocker.unblock(), running_worker("stt") as worker:
        yield worker


@pytest.fixture(scope="module")
def keyword_worker(django_db_blocker, django_db_setup):
    """A real Celery worker on queue keywords with the embedded extractor."""
    from tests.celery_workers import running_worker

    env = {"KEYWORD_BACKEND": "embedded"}
    with django_db_blocker.unblock(), running_worker("keywords", extra_env=env) as worker:
        yield worker
