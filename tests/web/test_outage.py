"""The API during a database or Redis outage (issue 12, item 8): it answered Django's HTML 500
page; now a JSON 503 with Retry-After. The outages are real: the request goes to a port where
nothing listens."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from rest_framework.authtoken.models import Token

from bench.common import free_port
from tests.factories import make_user


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


@pytest.fixture
def redis_down(settings):
    # The cache holds the upload counters every upload checks first.
    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "LOCATION": dead, "OPTIONS": {}},
    }


def _json_503(response) -> dict:
    assert response.status_code == 503, response.content[:300]
    assert response["Content-Type"] == "application/json"
    assert int(response["Retry-After"]) > 0
    return response.json()


@pytest.mark.parametrize("scheme", ["Token", "Bearer"])
def test_database_down_is_a_json_503_from_the_rest_api(token, database_down, scheme):
    client = Client(raise_request_exception=False)
    response = client.get("/api/transcripts/", HTTP_AUTHORIZATION=f"{scheme} {token}")
    assert "database is unavailable" in _json_503(response)["error"]


def test_database_down_is_a_json_503_in_openais_shape_from_v1(token, database_down):
    client = Client(raise_request_exception=False)
    response = client.get("/v1/models", HTTP_AUTHORIZATION=f"Bearer {token}")
    error = _json_503(response)["error"]
    assert error["type"] == "server_error" and "database" in error["message"]


def _upload() -> SimpleUploadedFile:
    return SimpleUploadedFile("a.wav", b"RIFF" + b"\0" * 64, content_type="audio/wav")


def test_redis_down_is_a_json_503_from_the_rest_api(token, redis_down):
    client = Client(raise_request_exception=False)
    response = client.post(
        "/api/transcripts/", {"file": _upload()}, HTTP_AUTHORIZATION=f"Token {token}"
    )
    assert "Redis server is unavailable" in _json_503(response)["error"]


def test_redis_down_is_a_json_503_from_v1(token, redis_down):
    client = Client(raise_request_exception=False)
    response = client.post(
        "/v1/audio/transcriptions",
        {"file": _upload(), "model": "whisper-1"},
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert "Redis" in _json_503(response)["error"]["message"]
