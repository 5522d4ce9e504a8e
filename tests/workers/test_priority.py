"""Low-priority workers lower their session's scheduling group too (workers/priority.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from workers.priority import autogroup_niceness

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/autogroup").exists(), reason="the kernel has no scheduler autogroups"
)
PROBE = (
    "from workers.priority import autogroup_niceness as a, match_autogroup_niceness as m; "
    "print(m(), a())"
)


def probe(*prefix: str, new_session: bool) -> list[str]:
    result = subprocess.run(
        [*prefix, sys.executable, "-c", PROBE],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        start_new_session=new_session,
        check=True,
    )
    return result.stdout.split()


@pytest.mark.slow  # starts a Python process
def test_a_niced_session_leader_lowers_its_autogroup():
    assert probe("nice", "-n", "19", new_session=True) == ["19", "19"]


@pytest.mark.slow  # starts a Python process
def test_a_process_inside_someone_elses_session_leaves_it_alone():
    # The test run's own session may be the kernel's default group, with no nice value.
    own = str(autogroup_niceness())
    assert probe("nice", "-n", "19", new_session=False) == ["None", own]


def test_the_default_group_reads_as_none(tmp_path):
    empty = tmp_path / "autogroup"
    empty.write_text("")
    assert autogroup_niceness(empty) is None
    assert autogroup_niceness(tmp_path / "missing") is None
    (tmp_path / "set").write_text("/autogroup-85 nice 7\n")
    assert autogroup_niceness(tmp_path / "set") == 7


@pytest.mark.slow  # starts a Python process
@pytest.mark.skipif(os.nice(0) != 0, reason="the tests themselves run niced")
def test_a_worker_at_normal_priority_changes_nothing():
    assert probe(new_session=True) == ["None", "0"]
