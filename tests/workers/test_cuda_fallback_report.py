"""A worker that has a GPU but runs Whisper on the CPU because CUDA could not load (issue 16)
says so: its pool process tells the main process's heartbeat, and /api/config, /api/health
and /status/ show it, without calling the platform down. The GPU is a fake nvidia-smi."""

from __future__ import annotations

import os
import socket
import sys
import uuid

import pytest
import redis
from django.conf import settings

from bench.common import free_port
from tests.workers.fake_gpu import GPU_NAME, fake_nvidia_smi
from transcription.speech import engine
from workers import heartbeat

ERROR = "RuntimeError: Library libcublas.so.12 is not found or cannot be loaded"
FELL_BACK = {"device": "cpu", "compute_type": "int8", "cuda_error": ERROR}


@pytest.fixture
def client_redis():
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def gpu(monkeypatch, tmp_path, settings):
    """This machine as a GPU host: nvidia-smi lists one GPU; Whisper's settings at auto."""
    fake_nvidia_smi(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    settings.WHISPER_DEVICE = "auto"
    settings.WHISPER_COMPUTE_TYPE = "auto"


@pytest.fixture
def online(client_redis):
    """Publish heartbeat records as workers do; withdrawn afterwards."""
    names = []

    def put(record: dict) -> dict:
        names.append(record["hostname"])
        heartbeat.publish(client_redis, record, ttl_s=60)
        return record

    yield put
    if names:
        client_redis.delete(*(heartbeat.KEY_PREFIX + name for name in names))


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"


def test_the_pool_process_tells_the_heartbeat_where_whisper_runs(client_redis, gpu, monkeypatch):
    main_pid = os.getppid()  # this process stands in for a worker's pool process
    key = heartbeat.runtime_key(socket.gethostname(), main_pid)
    client_redis.delete(key)
    monkeypatch.setattr(engine, "_listeners", [])
    monkeypatch.setattr(engine, "_model", object())
    monkeypatch.setattr(engine, "_runtime", ("cpu", "int8"))
    monkeypatch.setattr(engine, "_cuda_error", ERROR)
    try:
        # A keyword worker's pool process loads no Whisper and reports nothing.
        monkeypatch.setattr(sys, "argv", ["celery", "worker", "-Q", "keywords"])
        heartbeat._report_runtime()
        assert client_redis.get(key) is None
        monkeypatch.setattr(sys, "argv", ["celery", "worker", "-Q", "stt_live,stt"])
        heartbeat._report_runtime()
        assert heartbeat.read_runtime(client_redis, main_pid) == FELL_BACK
        assert 0 < client_redis.ttl(key) <= heartbeat.RUNTIME_TTL_S
    finally:
        client_redis.delete(key)
    assert heartbeat.read_runtime(client_redis, main_pid) is None


def test_the_heartbeat_says_cpu_and_why_once_the_model_fell_back(gpu):
    before = heartbeat.worker_record("stt-gpu0@h", ["stt_live", "stt"])
    assert (before["device"], before["compute_type"], before["cuda_error"]) == (
        "cuda",
        "float16",
        None,
    )
    after = heartbeat.worker_record("stt-gpu0@h", ["stt_live", "stt"], FELL_BACK)
    assert (after["device"], after["compute_type"], after["cuda_error"]) == ("cpu", "int8", ERROR)
    assert [g["name"] for g in after["gpus"]] == [GPU_NAME]  # the GPU is still there
    keywords = heartbeat.worker_record("keywords@h", ["keywords"], None)
    assert (keywords["device"], keywords["cuda_error"]) == ("cpu", None)


@pytest.fixture
def embedded_keywords(settings):
    settings.KEYWORD_BACKEND = "auto"
    settings.VLLM_API_URL = f"http://127.0.0.1:{free_port()}/v1"


@pytest.mark.django_db
def test_config_health_and_status_page_show_the_fallback(
    client, cast, gpu, online, embedded_keywords
):
    stt = online(heartbeat.worker_record(name("stt-gpu0"), ["stt_live", "stt"], FELL_BACK))
    online(heartbeat.worker_record(name("keywords"), ["keywords"]))
    config = client.get("/api/config").json()
    assert config["device"] == "cpu" and config["whisper_device"] == "cpu"
    assert config["whisper_device_setting"] == "auto"
    assert config["whisper_compute_type"] == "int8"
    assert config["gpu"] is None and config["gpus"] == []
    assert config["cuda_fallback"] == {stt["hostname"]: ERROR}
    assert config["status"] == "ok"

    health = client.get("/api/health")
    assert health.status_code == 200, health.json()

    client.force_login(cast.staff)
    page = client.get("/status/", headers={"Accept-Language": "en"}).content.decode()
    assert "has a GPU but runs Whisper on the CPU (int8)" in page
    assert "libcublas.so.12 is not found" in page and "Troubleshooting" in page
    assert "cpu (CUDA failed)" in page and GPU_NAME in page


@pytest.mark.django_db
def test_a_gpu_worker_whose_cuda_works_is_reported_as_before(client, gpu, online):
    online(heartbeat.worker_record(name("stt-gpu0"), ["stt_live", "stt"]))
    config = client.get("/api/config").json()
    assert (config["device"], config["whisper_device"], config["gpu"]) == ("cuda", "cuda", GPU_NAME)
    assert config["whisper_compute_type"] == "float16" and config["cuda_fallback"] == {}
