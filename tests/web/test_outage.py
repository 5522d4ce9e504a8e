"""The API during a database or Redis outage (issue 12, item 8): it answered Django's HTML 500
page; now a JSON 503 with Retry-After. The outages are real: the request goes to a port where
nothing listens."""

from __future__ import annotations

import json

import httpx
import pytest
import redis
from django.db import connection
from django.test import Client, RequestFactory
from django.utils import translation
from rest_framework.authtoken.models import Token

from bench.common import free_port
from tests.factories import make_user
from tests.servers import running_web
from transcription.batch import turns
from transcription.models import Transcript


@pytest.fixture
def token(transactional_db) -> str:
    return Token.objects.create(user=make_user("owner")).key


@pytest.fixture
def database_down():
    original = connection.settings_dict
    connection.close()
    connection.settings_dict = {**original, "PORT": str(free_port())}
    yield
    connection.close()
    connection.settings_dict = original


def _json_503(response) -> dict:
    assert response.status_code == 503, response.content[:300]
    assert response["Content-Type"] == "application/json"
    assert int(response["Retry-After"]) > 0
    return json.loads(response.content)


@pytest.mark.parametrize("scheme", ["Token", "Bearer"])
def test_database_down_is_a_json_503_from_the_rest_api(token, database_down, scheme):
    client = Client(raise_request_exception=False, HTTP_ACCEPT_LANGUAGE="en")
    response = client.get("/api/transcripts/", HTTP_AUTHORIZATION=f"{scheme} {token}")
    assert "database is unavailable" in _json_503(response)["error"]


def test_database_down_is_a_json_503_in_openais_shape_from_v1(token, database_down):
    client = Client(raise_request_exception=False, HTTP_ACCEPT_LANGUAGE="en")
    response = client.get("/v1/models", HTTP_AUTHORIZATION=f"Bearer {token}")
    error = _json_503(response)["error"]
    assert error["type"] == "server_error" and "database" in error["message"]


def _json_redis_view(request):
    # A real call to a Redis where nothing listens, as a view's would be during an outage.
    redis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_timeout=2).ping()


def test_redis_down_is_a_json_503_from_the_api():
    from transcription.web.outage import ApiOutageMiddleware

    middleware = ApiOutageMiddleware(_json_redis_view)
    for path in ("/api/transcripts/", "/v1/audio/transcriptions"):
        request = RequestFactory().post(path)
        try:
            _json_redis_view(request)
        except redis.ConnectionError as exc:
            # Called without LocaleMiddleware: the wording is checked in English.
            with translation.override("en"):
                response = middleware.process_exception(request, exc)
        body = _json_503(response)
        message = body["error"] if path.startswith("/api/") else body["error"]["message"]
        assert "job queue is unavailable; try again in 30 seconds" in message
        assert "Redis" not in message


@pytest.mark.slow
def test_uploads_during_a_redis_outage_are_kept_and_sent_when_it_is_back(token, eval_clip):
    # The upload counters in Redis were read first; now an upload needs Redis only to send
    # its task, and waits in PostgreSQL for the stt workers' sweep when it cannot.
    path, _ = eval_clip("ko_picovoice_leopard_test_ko")
    dead = f"redis://127.0.0.1:{free_port()}/0"
    with running_web(extra_env={"REDIS_URL": dead, "OPENAI_API_TIMEOUT_S": "1"}) as url:
        headers = {"Authorization": f"Token {token}"}
        with open(path, "rb") as handle:
            rest = httpx.post(
                url + "/api/transcripts/", headers=headers, files={"file": handle}, timeout=60
            )
        assert rest.status_code == 202, rest.text
        with open(path, "rb") as handle:
            v1 = httpx.post(
                url + "/v1/audio/transcriptions",
                headers=headers,
                files={"file": handle},
                data={"model": "whisper-1"},
                timeout=60,
            )
        # OpenAI's time-out answer: the transcript is kept, here is its id.
        assert v1.status_code == 504, v1.text
    kept = Transcript.objects.order_by("created_at")
    assert [t.status for t in kept] == ["queued", "queued"]
    assert all(t.dispatched_at is None for t in kept)
    # Redis is back: the sweep sends them (the test's own Redis: nothing consumes them).
    assert turns.dispatch_waiting() == 1  # one person: one turn while no worker is online
    assert Transcript.objects.filter(dispatched_at__isnull=False).count() == 1
