"""The process list ``./start_system.sh`` runs (``python -m workers.launch procfile``)."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from workers.launch import PARTIAL_NICENESS, UPLOAD_NICENESS, main, procfile_lines

LAUNCH_VARIABLES = (
    "STT_GPUS",
    "CUDA_VISIBLE_DEVICES",
    "LIVE_PARTIAL_QUEUE",
    "WEB_HOST",
    "WEB_PORT",
    "FLOWER_HOST",
    "FLOWER_PORT",
    "FLOWER_BASIC_AUTH",
    "KEYWORD_WORKER_CONCURRENCY",
    "LOG_LEVEL",
    "METRICS_HOST",
    "METRICS_PORT",
    "METRICS_EXPORTER",
)


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch) -> Path:
    # Where a generated Flower password is kept.
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    return tmp_path


def processes(monkeypatch, **env: str) -> dict[str, str]:
    for name in LAUNCH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return dict(line.split(": ", 1) for line in procfile_lines(python="python"))


def queue_of(command: str) -> str:
    words = shlex.split(command)
    return words[words.index("-Q") + 1]


def test_cpu_machine_gets_upload_live_and_partial_workers_by_priority(monkeypatch):
    procs = processes(monkeypatch, STT_GPUS="cpu")
    assert set(procs) == {
        "web",
        "stt-cpu",
        "stt-live-cpu",
        "stt-partial-cpu",
        "keywords",
        "flower",
        "metrics",
    }
    # Uploads below live finals, interim text below both; finals first wherever served.
    assert queue_of(procs["stt-cpu"]) == "stt_live,stt"
    assert f"exec nice -n {UPLOAD_NICENESS} python -m celery" in procs["stt-cpu"]
    assert queue_of(procs["stt-live-cpu"]) == "stt_live" and "nice" not in procs["stt-live-cpu"]
    assert "-n stt-live-cpu@%h" in procs["stt-live-cpu"]
    assert queue_of(procs["stt-partial-cpu"]) == "stt_partial"
    assert f"exec nice -n {PARTIAL_NICENESS} python -m celery" in procs["stt-partial-cpu"]
    assert "-n stt-partial-cpu@%h" in procs["stt-partial-cpu"]


@pytest.mark.parametrize("value", ["false", "no", "0"])
def test_live_finals_folded_into_stt_start_no_live_worker(monkeypatch, value):
    procs = processes(monkeypatch, STT_GPUS="cpu", LIVE_FINAL_WORKERS=value)
    assert not [name for name in procs if "live" in name]
    assert queue_of(procs["stt-cpu"]) == "stt_live,stt"


def test_each_gpu_gets_its_workers_pinned_to_it(monkeypatch):
    procs = processes(monkeypatch, STT_GPUS="0,1")
    for gpu in ("0", "1"):
        for name in (f"stt-gpu{gpu}", f"stt-live-gpu{gpu}", f"stt-partial-gpu{gpu}"):
            assert procs[name].startswith(f"CUDA_VISIBLE_DEVICES={gpu} exec "), procs[name]
    assert "stt-cpu" not in procs


@pytest.mark.parametrize("value", ["stt", "STT"])
def test_partials_folded_into_stt_start_no_partial_worker(monkeypatch, value):
    procs = processes(monkeypatch, STT_GPUS="cpu", LIVE_PARTIAL_QUEUE=value)
    assert not [name for name in procs if "partial" in name]
    assert queue_of(procs["stt-cpu"]) == "stt_live,stt"


def test_a_mistyped_partial_queue_stops_the_launcher_as_it_stops_the_settings(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="LIVE_PARTIAL_QUEUE"):
        processes(monkeypatch, STT_GPUS="cpu", LIVE_PARTIAL_QUEUE="stt-partial")


def test_cuda_visible_devices_pins_or_hides_the_gpus(monkeypatch):
    assert {"stt-gpu1", "stt-gpu3"} <= set(processes(monkeypatch, CUDA_VISIBLE_DEVICES="1,3"))
    # Empty hides every GPU from CUDA: one CPU worker, not a worker per nvidia-smi line.
    assert "stt-cpu" in processes(monkeypatch, CUDA_VISIBLE_DEVICES="")
    assert "stt-cpu" in processes(monkeypatch, CUDA_VISIBLE_DEVICES="-1")


def test_the_launchers_own_variables_reach_the_commands(monkeypatch):
    procs = processes(
        monkeypatch,
        STT_GPUS="cpu",
        WEB_HOST="127.0.0.1",
        WEB_PORT="8000",
        FLOWER_PORT="5566",
        FLOWER_BASIC_AUTH="ops:s3cret, viewer:pw",
        KEYWORD_WORKER_CONCURRENCY="3",
        LOG_LEVEL="warning",
    )
    assert "-b 127.0.0.1 -p 8000" in procs["web"]
    assert "--concurrency 3" in procs["keywords"]
    assert "--loglevel WARNING" in procs["stt-cpu"]
    assert "--port=5566" in procs["flower"]
    # Flower reads FLOWER_BASIC_AUTH from the environment it inherits: not on its command line.
    assert "s3cret" not in procs["flower"]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("STT_GPUS", "gpu0"),
        ("CUDA_VISIBLE_DEVICES", "0;1"),
        ("WEB_HOST", "http://0.0.0.0"),
        ("WEB_PORT", "5000x"),
        ("FLOWER_PORT", "0"),
        ("FLOWER_BASIC_AUTH", "admin"),
        ("FLOWER_HOST", "http://127.0.0.1"),
        ("KEYWORD_WORKER_CONCURRENCY", "0"),
        ("KEYWORD_WORKER_CONCURRENCY", "two"),
        ("LOG_LEVEL", "loud"),
    ],
)
def test_a_bad_value_stops_the_launcher_naming_the_variable(monkeypatch, capsys, variable, value):
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match=variable):
        processes(monkeypatch, **{"STT_GPUS": "cpu", variable: value})
    # From the command line: one line naming it, no traceback, and nothing printed.
    with pytest.raises(SystemExit) as stopped:
        main(["procfile"])
    assert str(stopped.value).startswith("ImproperlyConfigured: ")
    assert variable in str(stopped.value)
    assert capsys.readouterr().out == ""


def flower_address(command: str) -> str:
    return next(w for w in shlex.split(command) if w.startswith("--address=")).split("=", 1)[1]


def test_flower_listens_on_loopback_behind_a_generated_password(monkeypatch, data_dir):
    # Its UI lists every user's task arguments and can stop workers: by default it is on
    # 127.0.0.1 only, and other users of the machine need a password there too.
    procs = processes(monkeypatch, STT_GPUS="cpu")
    assert flower_address(procs["flower"]) == "127.0.0.1"
    password_file = data_dir / "flower_password"
    password = password_file.read_text().strip()
    assert oct(password_file.stat().st_mode & 0o777) == "0o600"
    # The line reads the file when Flower starts; the password is never on a command line.
    assert password not in procs["flower"]
    shell = procs["flower"].replace("exec ", "printenv FLOWER_BASIC_AUTH; : ", 1)
    result = subprocess.run(["sh", "-c", shell], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == f"flower:{password}"
    # Made once: the next start keeps it.
    processes(monkeypatch, STT_GPUS="cpu")
    assert password_file.read_text().strip() == password


@pytest.mark.parametrize("host", ["localhost", "127.0.0.2", "::1", "[::1]"])
def test_flower_on_another_loopback_address_keeps_the_generated_password(monkeypatch, host):
    procs = processes(monkeypatch, STT_GPUS="cpu", FLOWER_HOST=host)
    assert flower_address(procs["flower"]) == host.strip("[]")  # Tornado wants no brackets
    assert "FLOWER_BASIC_AUTH=flower:" in procs["flower"]


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "stt.example.com"])
def test_flower_beyond_loopback_needs_flower_basic_auth(monkeypatch, capsys, host):
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="FLOWER_BASIC_AUTH") as refused:
        processes(monkeypatch, STT_GPUS="cpu", FLOWER_HOST=host)
    assert "FLOWER_HOST" in str(refused.value)
    with pytest.raises(SystemExit, match="ImproperlyConfigured: FLOWER_BASIC_AUTH"):
        main(["procfile"])
    assert capsys.readouterr().out == ""

    procs = processes(monkeypatch, STT_GPUS="cpu", FLOWER_HOST=host, FLOWER_BASIC_AUTH="ops:pw")
    assert flower_address(procs["flower"]) == host
    assert "FLOWER_BASIC_AUTH" not in procs["flower"] and "ops:pw" not in procs["flower"]
