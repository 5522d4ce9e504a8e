"""A live session's rows: the transcript a start creates, who may resume it, and where a
resumed one goes on; and its recording, opened, appended to, closed and stored.

On the local file system the recording is written in place. With object storage the web
process appends to a spool file of its own (``storage.spool_path``) and puts it into the
bucket when the stream ends, before the session is let go: a connection that resumes it,
on this host or another, starts from the stored object, and workers read spans of it."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Max
from django.utils import timezone

from transcription import storage
from transcription.access import may_see
from transcription.live import recovery, store
from transcription.live.recording import LiveRecording, RecordingError, recording_name
from transcription.live.store import StreamState
from transcription.models import Transcript

log = logging.getLogger(__name__)


def create_transcript(user, language: str) -> tuple[str, str]:
    """A running live transcript owned by ``user``; returns its id and recording name
    (empty when recordings are not kept)."""
    pk, now = uuid.uuid4(), timezone.now()
    transcript = Transcript.objects.create(
        pk=pk,
        audio=recording_name(str(pk), timezone.localtime(now)) if settings.LIVE_KEEP_AUDIO else "",
        owner=user if user is not None and user.is_authenticated else None,
        source=Transcript.Source.LIVE,
        status=Transcript.Status.RUNNING,
        language="" if language == "auto" else language,
        title=f"Live {timezone.localtime(now):%Y-%m-%d %H:%M}",
        started_at=now,
    )
    return str(transcript.pk), transcript.audio.name


def forget_recording(session: str) -> None:
    """No player pointing at a file that is not there."""
    Transcript.objects.filter(pk=session).update(audio="")


def may_resume(session: str, user) -> bool:
    try:
        transcript = Transcript.objects.get(pk=session, source=Transcript.Source.LIVE)
    except (Transcript.DoesNotExist, ValueError, ValidationError):  # a malformed id too
        return False
    return may_see(user, transcript)


def reopen(session: str, language: str, last_seq: int = 0) -> tuple[StreamState, str]:
    """Mark a resumed session running again; returns where its timeline goes on and its
    recording's name. Its events are numbered after ``last_seq``, the client's last.

    The saved state can be older than the rows (it expires; a web process that died never
    saved it): the furthest point either reached is where the timeline goes on, so that no
    new segment overlaps an old one and no index is used twice. With no saved state at all
    (expired, or lost with Redis) the rows and the recording tell it, and what Redis lost
    is transcribed again from the recording (recovery.py)."""
    transcript = Transcript.objects.get(pk=session)
    Transcript.objects.filter(pk=session).update(status=Transcript.Status.RUNNING, finished_at=None)
    store.seq_at_least(session, last_seq)
    saved = store.saved_state(session)
    if saved is None:
        return recovery.resume_point(session, language), transcript.audio.name
    last = transcript.segments.aggregate(end=Max("end"), index=Max("index"))
    point = StreamState(
        max(saved.position_s, float(last["end"] or 0.0)),
        max(saved.next_utterance, last["index"] + 1 if last["index"] is not None else 0),
    )
    return point, transcript.audio.name


def recording_kept(session: str, name: str) -> bool:
    """Whether the transcript still wants the recording ``name`` (not deleted meanwhile)."""
    return Transcript.objects.filter(pk=session, audio=name).exists()


def _fetch_stored(name: str, spool) -> None:
    """Bring the stored recording to the spool when it holds more: a session resumed here
    after it streamed elsewhere (or after a crash here left a shorter spool)."""
    try:
        stored = storage.size(name)
    except FileNotFoundError:
        return  # a new session, or one whose stream never ended cleanly anywhere
    if stored > (spool.stat().st_size if spool.exists() else -1):
        storage.fetch_file(name, spool)


class Recorder:
    """The session's recording as the consumer writes it. The transcript matters more than
    the recording: any error stops recording, never the session."""

    def __init__(self, session: str) -> None:
        self.session = session
        self.recording: LiveRecording | None = None
        self.name = ""
        # (name, spool) closed but not yet in object storage: ``publish`` puts it there.
        self.unpublished: tuple[str, Path] | None = None

    def open(self, name: str, offset: float) -> float:
        """Open the recording and line it up with the timeline at ``offset``, or at its
        own end where it goes further (audio is written before the endpointer sees it, so
        a longer file is the truer timeline); never cuts it. Returns the offset."""
        recording = None
        try:
            spool = storage.spool_path(name)
            if storage.object_storage() is not None:
                _fetch_stored(name, spool)
            recording = LiveRecording(spool)
            offset = max(offset, recording.duration_s)
            recording.align(offset)
        except (OSError, RecordingError, ValueError) as exc:
            log.warning("live session %s is not recorded: %s", self.session, exc)
            if recording is not None:
                recording.close()
            return offset
        self.recording, self.name = recording, name
        return offset

    @property
    def is_open(self) -> bool:
        return self.recording is not None

    def append(self, samples) -> None:
        if self.recording is None:
            return
        try:
            self.recording.append(samples)
        except (OSError, RecordingError) as exc:  # a full disk: stop recording, keep going
            log.warning("live session %s stopped recording: %s", self.session, exc)
            self.close()

    def close(self) -> None:
        recording, self.recording = self.recording, None
        if recording is not None:
            recording.close()
            if storage.object_storage() is not None:
                self.unpublished = (self.name, recording.path)

    def publish(self, keep: bool = True) -> None:
        """Put the closed spool into object storage and delete it (nothing to do on the file
        system). ``keep`` False: the transcript was deleted meanwhile, so is the spool. A
        store that refuses leaves the spool where it is: a resume on this host goes on
        from it, and nothing recorded is thrown away."""
        pending, self.unpublished = self.unpublished, None
        if pending is None:
            return
        name, spool = pending
        if not keep or not spool.exists():  # deleted with its transcript (signals.py)
            spool.unlink(missing_ok=True)
            return
        try:
            storage.put_file(name, spool)
        except OSError as exc:
            log.warning(
                "live session %s: its recording stays in %s, not stored: %s",
                self.session,
                spool,
                exc,
            )
            return
        spool.unlink(missing_ok=True)


def end_orphaned_sessions(now: dt.datetime | None = None) -> int:
    """Mark live sessions done that no connection will end; returns how many.

    What ends a live session is its connection; a web process that died never ended its
    sessions. A streaming connection refreshes its hold on the session in Redis every few
    seconds (the hold lasts ``store.LOG_TTL_S``), so a session running with no holder, no
    stream ended lately (whose ``finish_live`` may still wait in the queue) and started
    before that is orphaned: it is marked done with what was stored (its segments are the
    transcript), never failed, and what its recording holds past the stored finals is
    transcribed (recovery.py). A resume reopens it. Safe to run from many workers.
    """
    now = now or timezone.now()
    quiet = now - dt.timedelta(seconds=store.LOG_TTL_S)
    candidates = (
        Transcript.objects.filter(
            source=Transcript.Source.LIVE, status=Transcript.Status.RUNNING, started_at__lt=quiet
        )
        .annotate(last_end=Max("segments__end"))
        .values_list("pk", "last_end")
    )
    ended = 0
    for pk, last_end in candidates:
        session = str(pk)
        if store.session_owner(session) or store.has_state(session):
            continue  # a connection streams it, or one ended it and finish_live is queued
        swept = Transcript.objects.filter(pk=pk, status=Transcript.Status.RUNNING).update(
            status=Transcript.Status.DONE,
            finished_at=now,
            duration=last_end or 0.0,
            progress=1.0,
        )
        if swept and store.session_owner(session):
            # A resume claimed it meanwhile (it reopened the row before or after this
            # update): it is streaming again.
            Transcript.objects.filter(pk=pk).update(
                status=Transcript.Status.RUNNING, finished_at=None
            )
            swept = 0
        elif swept:
            # Its connection died without ending the stream, perhaps with Redis: speech
            # cut but never transcribed is in the recording.
            recover_ended(session)
        ended += swept
    return ended


def recover_ended(session: str) -> None:
    language = Transcript.objects.filter(pk=session).values_list("language", flat=True).first()
    try:
        recovery.resume_point(session, language or settings.DEFAULT_LANGUAGE)
    except Exception:  # the sweep goes on: the rest of the sessions matter as much
        log.exception("live session %s: lost speech not recovered", session)
