"""The process list ``./start_system.sh`` runs (``python -m workers.launch procfile``)."""

from __future__ import annotations

import shlex

import pytest

from workers.launch import PARTIAL_NICENESS, main, procfile_lines

LAUNCH_VARIABLES = (
    "STT_GPUS",
    "CUDA_VISIBLE_DEVICES",
    "LIVE_PARTIAL_QUEUE",
    "WEB_HOST",
    "WEB_PORT",
    "FLOWER_PORT",
    "FLOWER_BASIC_AUTH",
    "KEYWORD_WORKER_CONCURRENCY",
    "LOG_LEVEL",
)


def processes(monkeypatch, **env: str) -> dict[str, str]:
    for name in LAUNCH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return dict(line.split(": ", 1) for line in procfile_lines(python="python"))


def queue_of(command: str) -> str:
    words = shlex.split(command)
    return words[words.index("-Q") + 1]


def test_cpu_machine_gets_an_stt_worker_and_a_low_priority_partial_worker(monkeypatch):
    procs = processes(monkeypatch, STT_GPUS="cpu")
    assert set(procs) == {"web", "stt-cpu", "stt-partial-cpu", "keywords", "flower"}
    assert queue_of(procs["stt-cpu"]) == "stt" and "nice" not in procs["stt-cpu"]
    assert queue_of(procs["stt-partial-cpu"]) == "stt_partial"
    assert f"exec nice -n {PARTIAL_NICENESS} python -m celery" in procs["stt-partial-cpu"]
    assert "-n stt-partial-cpu@%h" in procs["stt-partial-cpu"]


def test_each_gpu_gets_both_workers_pinned_to_it(monkeypatch):
    procs = processes(monkeypatch, STT_GPUS="0,1")
    for gpu in ("0", "1"):
        for name in (f"stt-gpu{gpu}", f"stt-partial-gpu{gpu}"):
            assert procs[name].startswith(f"CUDA_VISIBLE_DEVICES={gpu} exec "), procs[name]
    assert "stt-cpu" not in procs


@pytest.mark.parametrize("value", ["stt", "STT"])
def test_partials_folded_into_stt_start_no_partial_worker(monkeypatch, value):
    procs = processes(monkeypatch, STT_GPUS="cpu", LIVE_PARTIAL_QUEUE=value)
    assert not [name for name in procs if "partial" in name]
    assert queue_of(procs["stt-cpu"]) == "stt"


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
    assert "--basic-auth=ops:s3cret,viewer:pw" in procs["flower"]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("STT_GPUS", "gpu0"),
        ("CUDA_VISIBLE_DEVICES", "0;1"),
        ("WEB_HOST", "http://0.0.0.0"),
        ("WEB_PORT", "5000x"),
        ("FLOWER_PORT", "0"),
        ("FLOWER_BASIC_AUTH", "admin"),
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
