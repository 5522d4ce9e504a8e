"""Command-line tools some tests build audio with, installed from Debian when missing.

CI starts from a bare machine, so a test that needs ``sox`` brings it itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading

import pytest

_lock = threading.Lock()


def require_tool(command: str, package: str | None = None) -> str:
    """The path of ``command``, installing Debian's ``package`` (default: the command's
    name) first when it is missing."""
    found = shutil.which(command)
    if found:
        return found
    with _lock:
        found = shutil.which(command)
        if found:
            return found
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            pytest.fail(f"{command} is missing and cannot be installed here (not root on Debian)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-qq", package or command]
        if subprocess.run(install, env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, capture_output=True)
            subprocess.run(install, env=env, check=True, capture_output=True)
    found = shutil.which(command)
    assert found, f"installing {package or command} did not bring {command}"
    return found
