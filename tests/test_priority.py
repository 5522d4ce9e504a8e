"""Low-priority workers lower their session's scheduling group too (workers/priority.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/autogroup").exists(), reason="the kernel has no scheduler autogroups"
)
PROBE = (
    "from workers.priority import match_autogroup_niceness as m; "
    "print(m(), open('/proc/self/autogroup').read().split()[-1])"
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


def test_a_niced_session_leader_lowers_its_autogroup():
    assert probe("nice", "-n", "19", new_session=True) == ["19", "19"]


def test_a_process_inside_someone_elses_session_leaves_it_alone():
    own = Path("/proc/self/autogroup").read_text().split()[-1]
    assert probe("nice", "-n", "19", new_session=False) == ["None", own]


@pytest.mark.skipif(os.nice(0) != 0, reason="the tests themselves run niced")
def test_a_worker_at_normal_priority_changes_nothing():
    assert probe(new_session=True) == ["None", "0"]
