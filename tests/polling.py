"""Waiting in tests for something another process does."""

from __future__ import annotations

import time


def wait_for(predicate, timeout: float = 180.0, what: str = "condition", interval: float = 0.3):
    """``predicate()``'s first true value, asked every ``interval`` seconds; an
    AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout} s")
