"""The scale benchmark's memory sampler (bench/scale.py) on a real process tree: the peak
must count a child's memory under its parent (a Celery worker's model lives in its pool
child) and keep the highest moment after the memory is gone again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from bench.scale import MIB, MemorySampler

# Touches 150 MiB (so it is resident), holds it for a second, frees it, then idles.
CHILD = (
    "import time; b = b'x' * (150 << 20); print('ready', flush=True); time.sleep(1.0); "
    "del b; time.sleep(5)"
)
PARENT = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {CHILD!r}])"


def test_peak_counts_children_and_outlives_the_allocation():
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(6)"])
    try:
        sampler = MemorySampler(
            {"tree": [parent.pid], "other": [other.pid]},
            {"both": ["tree", "other"]},
            interval=0.05,
            refresh=0.1,  # the child is forked after the sampler starts
        )
        with sampler:
            assert parent.stdout.readline().strip() == "ready"
            time.sleep(1.5)  # past the free
        peaks = sampler.summary()["peak_mib"]
        assert peaks["tree"] > 150
        assert peaks["other"] < 100
        # The sum is of one moment's figures, not of the peaks.
        assert peaks["both"] <= peaks["tree"] + peaks["other"] + 1
        assert sampler.last["tree"] / MIB < 100
        assert sampler.samples > 10
    finally:
        os.killpg(parent.pid, signal.SIGKILL)  # the child with it
        other.kill()
        for process in (parent, other):
            process.wait()


def test_a_new_child_is_found_at_the_next_refresh():
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        sampler = MemorySampler({"tree": [parent.pid]}, interval=0.05, refresh=60)
        sampler.sample()  # the parent alone, before the child is forked
        assert parent.stdout.readline().strip() == "ready"
        # Without a refresh the child is not seen; with one it is.
        assert sampler.sample()["tree"] / MIB < 100
        sampler._found = -float("inf")
        assert sampler.sample()["tree"] / MIB > 150
    finally:
        os.killpg(parent.pid, signal.SIGKILL)
        parent.wait()


def test_a_process_that_is_gone_counts_nothing():
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    sampler = MemorySampler({"gone": [done.pid]})
    assert sampler.sample() == {"gone": 0}
