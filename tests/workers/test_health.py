"""/api/health and /api/config report the database, Redis, workers per queue and the LLM."""

from __future__ import annotations

import socket
import uuid
from contextlib import contextmanager

import pytest
import redis
from django.conf import settings
from django.db import connection

from bench.common import free_port
from tests.celery_workers import running_worker
from workers.heartbeat import KEY_PREFIX, publish, worker_record

ORIGINAL_KEYS = {"status", "device", "gpu", "mode", "llm_enabled"}


@contextmanager
def heartbeats(*queues: str):
    """Online workers as the health checks see them: a heartbeat record per queue in Redis,
    written by the function the workers' own heartbeat thread uses. A real worker process
    takes seconds to start (and an stt worker loads Whisper); the one test that starts
    real ones is marked slow."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    names = {
        queue: f"{queue}-test-{uuid.uuid4().hex[:8]}@{socket.gethostname()}" for queue in queues
    }
    try:
        for queue, hostname in names.items():
            publish(client, worker_record(hostname, [queue]), ttl_s=60)
        yield names
    finally:
        client.delete(*(KEY_PREFIX + hostname for hostname in names.values()))
        client.close()


@pytest.fixture(scope="module")
def workers():
    with heartbeats("stt", "keywords") as names:
        yield names


@pytest.fixture
def embedded_keywords(settings):
    # No LLM runs here; with the embedded backend a dead LLM must not fail health.
    settings.KEYWORD_BACKEND = "auto"
    settings.VLLM_API_URL = f"http://127.0.0.1:{free_port()}/v1"


@pytest.mark.django_db
def test_healthy_platform_answers_200_with_each_queue(client, workers, embedded_keywords):
    response = client.get("/api/health")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert body["failing"] == []
    assert body["checks"]["database"]["ok"]
    assert body["checks"]["redis"]["ok"]
    assert workers["stt"] in body["checks"]["queue:stt"]["workers"]
    assert workers["keywords"] in body["checks"]["queue:keywords"]["workers"]
    # The LLM is down but not required: reported, not failing.
    assert body["checks"]["llm"]["ok"] is True
    assert body["checks"]["llm"]["backend"] == "embedded"
    # No partial worker runs: reported, not failing; the stt workers do partials meanwhile.
    partial = body["checks"]["queue:stt_partial"]
    assert partial["ok"] is True and partial["required"] is False
    assert partial["workers"] == [] and "the stt workers do interim text" in partial["detail"]


@pytest.mark.django_db
def test_partial_worker_is_listed_and_can_be_folded_into_stt(client, settings, workers):
    with heartbeats("stt_partial") as partial:
        body = client.get("/api/health").json()
        assert body["checks"]["queue:stt_partial"]["workers"] == [partial["stt_partial"]]
        assert body["checks"]["queue:stt_partial"]["detail"] == "1 worker(s)"
    settings.LIVE_PARTIAL_QUEUE = "stt"
    assert "queue:stt_partial" not in client.get("/api/health").json()["checks"]


@pytest.mark.django_db
def test_redis_down_is_503_naming_redis(client, settings, workers, embedded_keywords):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    response = client.get("/api/health")
    body = response.json()
    assert response.status_code == 503
    assert "redis" in body["failing"]
    assert "Redis unreachable" in body["checks"]["redis"]["detail"]
    # Without Redis no worker can be seen either.
    assert "queue:stt" in body["failing"]
    assert "database" not in body["failing"]


@pytest.mark.django_db(transaction=True)
def test_database_down_is_503_naming_the_database(client, workers, embedded_keywords):
    original = connection.settings_dict
    connection.close()
    connection.settings_dict = {**original, "PORT": str(free_port())}
    try:
        response = client.get("/api/health")
    finally:
        connection.close()
        connection.settings_dict = original
    body = response.json()
    assert response.status_code == 503
    assert body["failing"] == ["database"]
    assert "PostgreSQL unreachable" in body["checks"]["database"]["detail"]


@pytest.mark.django_db
def test_no_worker_on_a_queue_is_503_naming_the_queue(client, settings, embedded_keywords):
    # A Redis database that no worker writes to stands for "no worker online".
    settings.REDIS_URL = settings.REDIS_URL.rsplit("/", 1)[0] + "/9"
    assert not list(redis.Redis.from_url(settings.REDIS_URL).scan_iter(match=KEY_PREFIX + "*"))
    response = client.get("/api/health")
    body = response.json()
    assert response.status_code == 503
    assert set(body["failing"]) == {"queue:stt", "queue:keywords"}
    assert "no worker is consuming queue stt" in body["checks"]["queue:stt"]["detail"]


@pytest.mark.django_db
def test_required_llm_down_is_503_naming_the_llm(client, settings, workers):
    settings.KEYWORD_BACKEND = "vllm"
    settings.VLLM_API_URL = f"http://127.0.0.1:{free_port()}/v1"
    response = client.get("/api/health")
    body = response.json()
    assert response.status_code == 503
    assert body["failing"] == ["llm"]
    assert body["checks"]["llm"]["required"] is True


@pytest.mark.django_db
def test_config_keeps_the_original_keys_and_adds_ours(client, workers, embedded_keywords):
    body = client.get("/api/config").json()
    assert body.keys() >= ORIGINAL_KEYS
    assert body["device"] == "cpu"
    assert body["gpu"] is None
    assert body["llm_enabled"] is False
    assert body["mode"] == "embedded"
    assert body["whisper_compute_type"] == "int8"
    assert body["keyword_backend_active"] == "embedded"
    assert body["workers"]["stt"] >= 1 and body["workers"]["keywords"] >= 1


@pytest.mark.django_db
def test_status_page_lists_workers(client, cast, workers, embedded_keywords):
    client.force_login(cast.staff)
    response = client.get("/status/")
    assert response.status_code == 200
    page = response.content.decode()
    assert workers["stt"] in page and workers["keywords"] in page


@pytest.mark.django_db
def test_llm_that_answers_is_reported_everywhere(client, settings, workers):
    from keywords import backends
    from tests.llm_server import FakeLlmServer

    backends._probe_cache.clear()
    with FakeLlmServer(model="Qwen/Qwen2.5-7B-Instruct") as llm:
        settings.KEYWORD_BACKEND = "vllm"
        settings.VLLM_API_URL = llm.url
        settings.VLLM_MODEL = "Qwen/Qwen2.5-7B-Instruct"
        health = client.get("/api/health")
        config = client.get("/api/config").json()
    assert health.status_code == 200, health.json()
    assert health.json()["checks"]["llm"]["ok"] is True
    assert health.json()["checks"]["llm"]["backend"] == "vllm"
    assert config["llm_enabled"] is True and config["mode"] == "llm"
    assert config["keyword_backend_active"] == "vllm" and config["llm_available"] is True


@pytest.mark.slow
@pytest.mark.django_db
def test_real_workers_are_seen_through_their_own_heartbeats(client, django_db_blocker):
    # The fast tests above write the heartbeat records themselves; here real worker
    # processes write them (their warm-up skipped: it is not what is checked here).
    env = {"WORKER_WARMUP": "false"}
    with (
        django_db_blocker.unblock(),
        running_worker("stt", extra_env=env) as stt,
        running_worker("keywords", extra_env=env) as kw,
        running_worker("stt_partial", extra_env=env) as partial,
    ):
        body = client.get("/api/health").json()
        assert stt.hostname in body["checks"]["queue:stt"]["workers"]
        assert kw.hostname in body["checks"]["queue:keywords"]["workers"]
        assert partial.hostname in body["checks"]["queue:stt_partial"]["workers"]
    # A stopped worker withdraws its record at once, without waiting for it to expire.
    body = client.get("/api/health").json()
    assert stt.hostname not in body["checks"]["queue:stt"]["workers"]
    assert partial.hostname not in body["checks"]["queue:stt_partial"]["workers"]
