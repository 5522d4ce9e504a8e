"""The process's one Kiwi (kiwipiepy's Korean morphological analyser), shared by keyword
extraction (``keywords/extractors``) and search (``transcription/search``).

A leaf module: it imports nothing of either app, so search and keywords can both use it
without importing each other.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kiwipiepy import Kiwi

log = logging.getLogger(__name__)

_kiwi: Kiwi | None = None
_kiwi_lock = threading.Lock()
_warming = threading.Lock()
_warm_started = False


def get_kiwi() -> Kiwi:
    """The process's Kiwi analyser, built on first use (about 2-3 s) and then shared.

    Kiwi is built in one thread and only used afterwards; its author documents
    concurrent analysis with a shared, already-built instance as safe.
    """
    global _kiwi
    if _kiwi is None:
        with _kiwi_lock:
            if _kiwi is None:
                from kiwipiepy import Kiwi

                kiwi = Kiwi()
                # Kiwi finishes loading its language model on the first analysis;
                # do it here so no caller's first segment pays for it.
                kiwi.tokenize("")
                kiwi.tokenize("워밍업 문장입니다.")
                _kiwi = kiwi
    return _kiwi


def kiwi_ready() -> bool:
    """Whether Kiwi is loaded in this process (set only once fully loaded)."""
    return _kiwi is not None


def warm_kiwi_in_background() -> None:
    """Load Kiwi in a daemon thread (once per process) so later callers need not wait."""
    global _warm_started
    with _warming:
        if _warm_started or kiwi_ready():
            return
        _warm_started = True

    def load() -> None:
        try:
            get_kiwi()
        except Exception:  # pragma: no cover - kiwipiepy is a dependency
            log.exception("could not load Kiwi; searches keep the rule-based stripper")

    threading.Thread(target=load, name="kiwi-warmup", daemon=True).start()
