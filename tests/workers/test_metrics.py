"""The metrics of a host's processes (workers/metrics.py, celery_metrics.py,
metrics_exporter.py) and where the launcher puts them (workers/launch.py).

Processes here are real: each writes into a multiprocess folder the way the launcher's
children do, and the folder is read back as the web or the exporter reads it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from bench.common import free_port
from tests.conftest import REPO_ROOT
from workers import celery_metrics, metrics
from workers.launch import metrics_dir, prepare_metrics_dir, procfile_lines

RECORD = """
import sys
from workers import metrics
metrics.UPLOADS.inc()
metrics.UPLOAD_BYTES.inc(1000)
metrics.observe_transcription("live_final", 2.0, 0.5)
metrics.LIVE_ACTIVE.inc()
print("recorded", flush=True)
if sys.argv[1:] == ["stay"]:
    sys.stdin.read()
"""


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def record(folder: Path, *, stay: bool = False) -> subprocess.Popen:
    """A process of the host recording a little of everything into ``folder``."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    process = subprocess.Popen(
        [sys.executable, "-c", RECORD, *(["stay"] if stay else [])],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().strip() == "recorded"
    return process


@pytest.fixture
def folder(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "metrics"
    path.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(path))
    return path


def test_the_processes_of_a_host_are_added_up_and_dead_ones_leave_the_live_gauge(folder):
    record(folder).wait()  # ended without a word, as a killed pool child does
    alive = record(folder, stay=True)
    try:
        found = samples(metrics.exposition(platform=False).decode())
        assert found[("stt_uploads_total", ())] == 2
        assert found[("stt_upload_bytes_total", ())] == 2000
        kind = (("kind", "live_final"),)
        assert found[("stt_transcribed_audio_seconds_total", kind)] == 4.0
        assert found[("stt_transcription_real_time_factor_count", kind)] == 2
        bucket = (("kind", "live_final"), ("le", "0.3"))
        assert found[("stt_transcription_real_time_factor_bucket", bucket)] == 2  # 0.25 each
        # Only the process still running counts among the active sessions.
        assert found[("stt_live_sessions_active", ())] == 1
        # Platform-wide gauges only where asked for.
        assert not [name for name, _ in found if name.startswith("stt_queue_waiting")]
    finally:
        alive.stdin.close()
        alive.wait()
    found = samples(metrics.exposition(platform=False).decode())
    assert found.get(("stt_live_sessions_active", ()), 0) == 0
    assert found[("stt_uploads_total", ())] == 2  # counters of the dead stay: rates hold


def test_sweep_forgets_the_live_gauges_of_dead_processes_only(folder):
    dead = record(folder)
    dead.wait()
    alive = record(folder, stay=True)
    try:
        assert metrics.sweep_dead_processes(folder) == [dead.pid]
        assert not list(folder.glob(f"gauge_livesum_{dead.pid}.db"))
        assert list(folder.glob(f"gauge_livesum_{alive.pid}.db"))
        assert list(folder.glob(f"counter_{dead.pid}.db"))
    finally:
        alive.stdin.close()
        alive.wait()


def test_without_a_folder_a_process_answers_for_itself(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    before = REGISTRY.get_sample_value("stt_uploads_total") or 0
    metrics.UPLOADS.inc()
    found = samples(metrics.exposition(platform=False).decode())
    assert found[("stt_uploads_total", ())] == before + 1


# --- Celery ----------------------------------------------------------------------------


def tasks_total(task: str, outcome: str) -> float:
    labels = {"task": task, "outcome": outcome}
    return REGISTRY.get_sample_value("stt_tasks_total", labels) or 0.0


def test_task_outcomes_and_run_times_are_counted_by_task(db):
    from transcription.tasks import finish_live, transcribe_partial

    name = transcribe_partial.name
    success, runs = (
        tasks_total(name, "success"),
        REGISTRY.get_sample_value("stt_task_duration_seconds_count", {"task": name}),
    )
    transcribe_partial.apply(args=["a job from an older web process"])
    assert tasks_total(name, "success") == success + 1
    runs_after = REGISTRY.get_sample_value("stt_task_duration_seconds_count", {"task": name})
    assert runs_after == (runs or 0) + 1

    failure = tasks_total(finish_live.name, "failure")
    finish_live.apply(args=["not-a-uuid", 1.0])  # the lookup raises
    assert tasks_total(finish_live.name, "failure") == failure + 1


def test_a_published_task_carries_its_sending_time_and_the_worker_the_wait():
    headers: dict = {}
    celery_metrics._stamp_sent_at(headers=headers)
    assert abs(headers[celery_metrics.SENT_AT_HEADER] - time.time()) < 5

    class Request(dict):
        delivery_info = {"routing_key": "stt_live"}

    request = Request({celery_metrics.SENT_AT_HEADER: 100.0})
    assert celery_metrics.queue_wait(request, 102.5) == ("stt_live", 2.5)
    assert celery_metrics.queue_wait(Request(), 102.5) is None
    # A clock behind the publisher's is no negative wait.
    assert celery_metrics.queue_wait(request, 99.0) == ("stt_live", 0.0)


def test_a_rejected_message_is_counted_under_its_task_name():
    class Message:
        headers = {"task": "transcription.tasks.transcribe"}

    before = tasks_total("transcription.tasks.transcribe", "rejected")
    celery_metrics._on_rejected(message=Message())
    assert tasks_total("transcription.tasks.transcribe", "rejected") == before + 1


# --- Keywords --------------------------------------------------------------------------


class Answers:
    name = "embedded"

    def extract(self, text, *, language=None, max_items=10):
        return []


class Fails:
    name = "vllm"

    def extract(self, text, *, language=None, max_items=10):
        from keywords.extractors.vllm import LlmUnavailable

        raise LlmUnavailable("HTTP 503")


def llm_calls(backend: str, outcome: str) -> float:
    labels = {"backend": backend, "outcome": outcome}
    return REGISTRY.get_sample_value("stt_llm_calls_total", labels) or 0.0


def test_llm_calls_and_failures_by_backend(settings):
    from keywords.extractors.chooser import extract_keywords

    settings.KEYWORD_BACKEND = "vllm"
    before = {key: llm_calls(*key) for key in [("vllm", "failure"), ("embedded", "success")]}
    timed = REGISTRY.get_sample_value("stt_llm_call_duration_seconds_count", {"backend": "vllm"})
    extract_keywords("삼성전자의 반도체", llm=Fails(), embedded=Answers())
    assert llm_calls("vllm", "failure") == before[("vllm", "failure")] + 1
    assert llm_calls("embedded", "success") == before[("embedded", "success")] + 1
    after = REGISTRY.get_sample_value("stt_llm_call_duration_seconds_count", {"backend": "vllm"})
    assert after == (timed or 0) + 1


# --- Uploads ---------------------------------------------------------------------------


def test_an_upload_task_records_its_real_time_factor_and_how_the_transcription_ended(db):
    from transcription.batch.meter import UploadMeter
    from transcription.models import Transcript

    transcript = Transcript.objects.create(
        source=Transcript.Source.UPLOAD, status=Transcript.Status.QUEUED, processed_s=10.0
    )
    kind = {"kind": "upload"}
    audio = REGISTRY.get_sample_value("stt_transcribed_audio_seconds_total", kind)
    done = REGISTRY.get_sample_value("stt_transcriptions_total", {"status": "done"})
    meter = UploadMeter(transcript.pk)
    Transcript.objects.filter(pk=transcript.pk).update(
        processed_s=70.0, status=Transcript.Status.DONE
    )
    meter.finish()
    assert REGISTRY.get_sample_value("stt_transcribed_audio_seconds_total", kind) == audio + 60
    assert REGISTRY.get_sample_value("stt_transcriptions_total", {"status": "done"}) == done + 1


# --- The launcher and the exporter ------------------------------------------------------


def test_the_launcher_starts_one_exporter_for_the_host_and_keeps_flower_out(monkeypatch):
    for name in ("METRICS_PORT", "METRICS_EXPORTER", "METRICS_HOST", "STT_GPUS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STT_GPUS", "cpu")
    procs = dict(line.split(": ", 1) for line in procfile_lines(python="python"))
    assert procs["metrics"] == "exec python -m workers.metrics_exporter --platform"
    assert "env -u PROMETHEUS_MULTIPROC_DIR python -m celery" in procs["flower"]
    for variable, value in (("METRICS_PORT", "0"), ("METRICS_EXPORTER", "thread")):
        monkeypatch.setenv(variable, value)
        assert "metrics" not in dict(line.split(": ", 1) for line in procfile_lines())
        monkeypatch.delenv(variable)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("METRICS_PORT", "port"), ("METRICS_EXPORTER", "sidecar"), ("METRICS_HOST", "a b")],
)
def test_a_bad_metrics_variable_stops_the_launch(monkeypatch, variable, value):
    from django.core.exceptions import ImproperlyConfigured

    monkeypatch.setenv("STT_GPUS", "cpu")
    monkeypatch.setenv(variable, value)
    with pytest.raises(ImproperlyConfigured, match=variable):
        procfile_lines()


def test_the_host_folder_is_under_data_dir_by_host_name_and_emptied_of_metrics_only(tmp_path):
    import socket

    environ = {"DATA_DIR": str(tmp_path)}
    folder = metrics_dir(environ)
    assert folder == tmp_path.resolve() / "metrics" / socket.gethostname()
    assert metrics_dir({**environ, "PROMETHEUS_MULTIPROC_DIR": "/run/m"}) == Path("/run/m")
    folder.mkdir(parents=True)
    (folder / "counter_123.db").write_bytes(b"x")
    (folder / "notes.txt").write_text("kept")
    prepare_metrics_dir(folder)
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]


def test_the_exporter_serves_the_host_folder_with_or_without_the_platform_gauges(folder):
    record(folder).wait()
    for platform in (True, False):
        port = free_port()
        env = {
            **os.environ,
            "PROMETHEUS_MULTIPROC_DIR": str(folder),
            "METRICS_PORT": str(port),
        }
        command = [sys.executable, "-m", "workers.metrics_exporter"]
        process = subprocess.Popen(
            command + (["--platform"] if platform else []),
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        try:
            text = _scrape(f"http://127.0.0.1:{port}/metrics", process)
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0
        found = samples(text)
        assert found[("stt_uploads_total", ())] == 1
        assert (("stt_broker_up", ()) in found) is platform


def _scrape(url: str, process: subprocess.Popen, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the exporter exited"
        try:
            return httpx.get(url, timeout=5).text
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError(f"nothing answered on {url}")


def test_a_taken_port_leaves_the_process_running_without_an_exporter():
    import socket

    from workers.metrics_exporter import serve_in_thread

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert serve_in_thread("127.0.0.1", port, platform=False) is None
