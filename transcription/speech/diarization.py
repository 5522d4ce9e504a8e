"""Who spoke when: the place for an automatic diarization backend.

A backend is a class with one method, ``label(audio, spans)``: given the recording (a local
path or an open binary file at its start, either of which speech/audio.py decodes) and the
segments' ``(start, end)`` times in seconds, it returns one label per span, in order (``"S1"``, ``"S2"``, ...; None where it
cannot tell). The batch pipeline calls it once, after a file's segments are stored, and
writes the labels as ``Speaker`` rows (transcription/speakers.py); people name them later.

``DIARIZATION_BACKEND`` picks it: ``none`` (the default: nothing is labelled) or the dotted
path of such a class (``mypackage.diarize.PyannoteBackend``). No speaker model can be
downloaded on the machines this was built on, so none ships here; the tests use a small fake.
The class is imported when a worker starts, so a wrong path stops the worker with a message
instead of failing every transcription, and made once per process, on first use.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import IO, Protocol

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

SETTING = "DIARIZATION_BACKEND"
NONE = "none"
_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")


class DiarizationBackend(Protocol):
    def label(
        self, audio: str | IO[bytes], spans: Sequence[tuple[float, float]]
    ) -> list[str | None]:
        """One speaker label per span (None: unknown), in the order given."""
        ...


def parse_setting(value: str | None) -> str:
    """``none`` or a dotted class path, as written; raises ImproperlyConfigured naming the
    variable otherwise (called by settings.py on the environment's value)."""
    text = (value or "").strip()
    if not text or text.lower() == NONE:
        return NONE
    if not _DOTTED.fullmatch(text):
        raise ImproperlyConfigured(
            f"{SETTING}={value!r} is neither 'none' nor the dotted path of a backend class "
            "(package.module.Class)"
        )
    return text


@functools.cache
def _backend_class(path: str):
    try:
        cls = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"{SETTING}={path!r} cannot be imported: {exc}") from exc
    if not callable(getattr(cls, "label", None)):
        raise ImproperlyConfigured(f"{SETTING}={path!r} has no label(audio, spans) method")
    return cls


def check() -> None:
    """Import the configured class (not instantiate it: that may load a model), raising
    ImproperlyConfigured naming the variable when it is wrong; for a worker's start."""
    path = parse_setting(getattr(settings, SETTING, NONE))
    if path != NONE:
        _backend_class(path)


@functools.cache
def _instance(path: str) -> DiarizationBackend:
    cls = _backend_class(path)
    return cls() if isinstance(cls, type) else cls


def backend() -> DiarizationBackend | None:
    """The configured backend (one instance per process, made on first use), or None for
    ``none``."""
    path = parse_setting(getattr(settings, SETTING, NONE))
    return None if path == NONE else _instance(path)


def label_spans(
    audio: str | IO[bytes], spans: Sequence[tuple[float, float]]
) -> list[str | None] | None:
    """The configured backend's labels for ``spans`` (checked: one per span, each a short
    string or None), or None when no backend is configured or there is nothing to label."""
    chosen = backend()
    if chosen is None or not spans:
        return None
    labels = list(chosen.label(audio, list(spans)))
    if len(labels) != len(spans):
        raise ValueError(
            f"the diarization backend gave {len(labels)} labels for {len(spans)} spans"
        )
    cleaned: list[str | None] = []
    for label in labels:
        text = " ".join(str(label).split())[:32] if label is not None else ""
        cleaned.append(text or None)
    return cleaned
