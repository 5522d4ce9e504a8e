"""A worker started under ``nice`` (the partial workers, see ``workers/launch.py``) gets the
low priority it asked for even where the kernel groups processes by session.

With ``sched_autogroup_enabled`` (the default on desktop and many server kernels), CPU time
is shared between sessions first and ``nice`` only orders processes inside one session.
Every worker is started in a session of its own (honcho and the test helpers do that), so a
niced partial worker would still get half of the CPU beside the stt worker, slowing the
finals it is meant to stay out of the way of. The session's autogroup has a nice value of
its own: the worker's main process, when it leads its session, gives it its own niceness.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from celery import signals

log = logging.getLogger(__name__)
AUTOGROUP = Path("/proc/self/autogroup")
RETRIES = 10


def autogroup_niceness(autogroup: Path = AUTOGROUP) -> int | None:
    """The nice value of a process's autogroup, or None when it has none of its own.

    The file reads "/autogroup-N nice X"; it is empty for a process still in the kernel's
    default group (a session that began before autogroups or under a daemon that never
    called setsid), which is scheduled like the root group, at nice 0.
    """
    try:
        fields = autogroup.read_text().split()
    except OSError:
        return None
    return int(fields[-1]) if fields else None


def match_autogroup_niceness(autogroup: Path = AUTOGROUP) -> int | None:
    """Set the session's autogroup nice value to this process's; returns it, or None when
    there is nothing to do (not niced, not the session leader, no autogroups)."""
    niceness = os.nice(0)
    if niceness <= 0 or os.getsid(0) != os.getpid() or not autogroup.exists():
        return None
    for attempt in range(RETRIES):
        try:
            # Raising it needs no privilege; the file reads "/autogroup-N nice X".
            autogroup.write_text(f"{niceness}\n")
            return niceness
        except BlockingIOError:
            # EAGAIN: without CAP_SYS_ADMIN the kernel takes one such change per 100 ms
            # machine-wide, and every partial worker starts at the same moment.
            time.sleep(0.15 * (attempt + 1))
        except OSError as exc:
            log.warning("could not lower the CPU priority of this worker's session: %s", exc)
            return None
    log.warning("could not lower the CPU priority of this worker's session: busy")
    return None


@signals.worker_init.connect
def _lower_session_priority(**_kwargs) -> None:
    niceness = match_autogroup_niceness()
    if niceness is not None:
        log.info("running at nice %d (the session's scheduling group too)", niceness)
