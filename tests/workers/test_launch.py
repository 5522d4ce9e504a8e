"""The process list ``./start_system.sh`` runs (``python -m workers.launch procfile``)."""

from __future__ import annotations

import shlex

import pytest

from workers.launch import PARTIAL_NICENESS, procfile_lines


def processes(monkeypatch, **env: str) -> dict[str, str]:
    for name in ("STT_GPUS", "LIVE_PARTIAL_QUEUE", "CUDA_VISIBLE_DEVICES"):
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
