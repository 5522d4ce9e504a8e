"""The upload service: a recording becomes a queued transcript.

One path for every way a file comes in (the REST API, the OpenAI-compatible endpoint, the
``transcribe`` command's checks): the same limits and language check, the same row, the same
stt task. Callers turn ``UploadRejected`` into their own kind of error answer. The messages
are for people, in the request's language (LocaleMiddleware has activated it).
"""

from __future__ import annotations

import logging
import math
import uuid

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from transcription import storage
from transcription.batch import turns
from transcription.models import Transcript
from transcription.speech.audio import NotAudioError, probe_audio
from transcription.speech.languages import WHISPER_LANGUAGES
from workers import metrics

log = logging.getLogger(__name__)
STORE_RETRY_S = 10


def format_duration(seconds: float) -> str:
    """``2 h 30 min``, ``1 min 40 s``, ``9 s`` in the reader's language (``2시간 30분``); the
    same rounding as ``speech.audio.format_duration``, which the workers' messages use."""
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [_("%(count)d h") % {"count": hours}] if hours else []
    if minutes:
        parts.append(_("%(count)d min") % {"count": minutes})
    if secs and not hours or not parts:
        parts.append(_("%(count)d s") % {"count": secs})
    return " ".join(parts)


class UploadRejected(Exception):
    """An upload refused before anything was stored, with the HTTP status that fits (and,
    for 429, the seconds after which it would be taken)."""

    def __init__(self, status_code: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.retry_after = retry_after


def about_minutes(seconds: float) -> str:
    """``about 50 minutes``: a wait as people say it, never less than a minute."""
    minutes = max(1, math.ceil(seconds / 60))
    return ngettext("about %(n)d minute", "about %(n)d minutes", minutes) % {"n": minutes}


def too_large() -> UploadRejected:
    return UploadRejected(
        413,
        _("the upload is larger than the limit of %(limit)s MB")
        % {"limit": settings.UPLOAD_MAX_MB},
    )


def check_language(value: str | None) -> str:
    """A Whisper language code or ``auto``; blank means ``DEFAULT_LANGUAGE``."""
    language = (value or settings.DEFAULT_LANGUAGE).strip().lower()
    if language != "auto" and language not in WHISPER_LANGUAGES:
        raise UploadRejected(
            400,
            _(
                "unknown language %(language)s; use a language code such as ko or en, or auto "
                "to detect it"
            )
            % {"language": repr(language)},
        )
    return language


def check_size(request: HttpRequest) -> None:
    """Refuse before reading the body when the client already says it is too big."""
    limit = settings.UPLOAD_MAX_MB * 1024 * 1024
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    # The multipart envelope around the file is allowed for.
    if declared > limit + 64 * 1024:
        raise too_large()


def check_duration(name: str, duration_s: float | None) -> None:
    """Refuse a recording longer than ``UPLOAD_MAX_DURATION_S`` before any work is queued."""
    limit = settings.UPLOAD_MAX_DURATION_S
    if duration_s is not None and duration_s > limit:
        raise UploadRejected(
            413,
            _("%(name)s: the recording is %(duration)s long; the limit is %(limit)s")
            % {
                "name": name,
                "duration": format_duration(duration_s),
                "limit": format_duration(limit),
            },
        )


def check_budget(owner, name: str, duration_s: float | None) -> None:
    """Refuse an upload that would take its owner past ``UPLOAD_AUDIO_PER_HOUR_S``."""
    limit = settings.UPLOAD_AUDIO_PER_HOUR_S
    if not limit or owner is None or not owner.is_authenticated:
        return
    if duration_s and duration_s > limit:
        raise UploadRejected(
            413,
            _(
                "%(name)s: the recording is %(duration)s long, more than the %(limit)s of audio "
                "one person may upload in an hour"
            )
            % {
                "name": name,
                "duration": format_duration(duration_s),
                "limit": format_duration(limit),
            },
        )
    wait = turns.budget_wait_s(owner.pk, duration_s)
    if wait:
        raise UploadRejected(
            429,
            _(
                "you have uploaded %(limit)s of audio in the last hour, the most one person may; "
                "try again in %(wait)s"
            )
            % {"limit": format_duration(limit), "wait": about_minutes(wait)},
            retry_after=int(wait),
        )


def create_upload(
    upload: UploadedFile | None,
    *,
    owner=None,
    language: str | None = None,
    title: str = "",
) -> Transcript:
    """Store an uploaded file as a queued transcript and queue its transcription.

    The transcript waits for its owner's turn (batch/turns.py); its task is sent when the
    caller's transaction commits, so a worker never looks for a row that is not there yet
    (or that a rollback took back).
    """
    if upload is None:
        raise UploadRejected(400, _("no file: send the recording as multipart field 'file'"))
    if upload.size > settings.UPLOAD_MAX_MB * 1024 * 1024:
        raise too_large()
    language = check_language(language)
    try:
        source = upload.temporary_file_path() if hasattr(upload, "temporary_file_path") else upload
        info = probe_audio(source)
    except NotAudioError as exc:
        raise UploadRejected(400, f"{upload.name}: {exc}") from exc
    finally:
        upload.seek(0)
    check_duration(upload.name, info.duration_s)
    check_budget(owner, upload.name, info.duration_s)
    task_id = str(uuid.uuid4())
    try:
        # The file goes to storage (a bucket, with STORAGE_URL) before the row is written.
        with storage.translated(upload.name):
            transcript = Transcript.objects.create(
                owner=owner if owner is not None and owner.is_authenticated else None,
                source=Transcript.Source.UPLOAD,
                title=(title or upload.name)[:255],
                language=language,
                duration=info.duration_s or None,
                audio=upload,
                task_id=task_id,
            )
    except storage.StorageUnavailable as exc:
        # Why (the storage client's own words) goes to the log, not to the person.
        log.warning("upload %s refused: the audio store does not answer: %s", upload.name, exc)
        raise UploadRejected(
            503,
            _("the audio store does not answer; try again in %(seconds)d seconds")
            % {"seconds": STORE_RETRY_S},
            retry_after=STORE_RETRY_S,
        ) from exc
    turns.dispatch(transcript.owner_id)
    size = upload.size or 0
    # Counted once the row is there for good: a rolled-back upload was never accepted.
    transaction.on_commit(lambda: _count_upload(size))
    return transcript


def _count_upload(size: int) -> None:
    metrics.UPLOADS.inc()
    metrics.UPLOAD_BYTES.inc(size)
