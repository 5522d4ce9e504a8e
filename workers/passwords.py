"""Passwords the platform makes for itself and keeps with its data.

The embedded PostgreSQL and Redis and a Flower on loopback are reachable by every local
user, so each gets a random password on first use, kept in a file under DATA_DIR that only
its owner can read (mode 0600, as ``var/secret_key``). The file is the truth: the servers
are given what it holds on every start, and the URLs handed to the platform's processes
carry it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import tempfile
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured


def generated_password(path: Path) -> str:
    """The password kept in ``path``, made on first use: 48 hex digits, safe unquoted in
    URLs, SQL literals and Redis configuration."""
    value = _read(path)
    if value is None:
        _create(path)
        value = _read(path)
    if not value:
        raise ImproperlyConfigured(f"{path} is empty; delete it and a new password is made")
    return value


def _read(path: Path) -> str | None:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    if mode & 0o077:
        # Copied or restored with a looser mode: close it again before reading it.
        with contextlib.suppress(PermissionError):
            path.chmod(stat.S_IMODE(mode) & 0o600)
    return path.read_text().strip()


def _create(path: Path) -> None:
    # Several processes may ask at once (the settings of each worker, the embedded servers):
    # the file is written whole under a temporary name (mkstemp makes it 0600, whatever the
    # umask) and linked into place, so it appears complete or not at all and the first wins.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_hex(24) + "\n")
        with contextlib.suppress(FileExistsError):  # another process was first
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
