"""People correcting a transcript's text: the plain functions behind the segment API.

The machine's text is kept on the first edit (``Segment.original_text``); every edit raises
``Segment.version``, and an edit names the version it was made on, so that of two people who
opened the same version the second is told (a conflict, with the first one's text) instead of
silently overwriting it.

Edits wait until the transcription is over: while a transcript is queued or running, a
worker may still write its segments (a retried batch task rewrites segments by index; a live
session's redelivered final rewrites its row) and would put the machine's text back over a
person's. The transcript's row is locked for the edit, the lock those writers take too, so
a job cannot start between the check and the write; ``_store`` in the batch pipeline and
the live finals keep a person's text should one come anyway.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from transcription.models import Segment, Transcript

# A segment is at most about 30 s of speech: some 500 characters of Korean. This leaves
# room for a correction, not for pasting a document into one segment.
MAX_TEXT_CHARS = 2000
EDITABLE = (Transcript.Status.DONE, Transcript.Status.FAILED)


class EditRefused(Exception):
    """An edit that cannot be made as asked; ``message`` says what to do instead."""

    def __init__(self, message: str, code: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.code, self.status = message, code, status


class EditConflict(Exception):
    """The segment changed since the version the edit was made on; ``segment`` is as it is."""

    def __init__(self, segment: Segment) -> None:
        super().__init__(f"segment {segment.pk} is at version {segment.version}")
        self.segment = segment


def clean_text(raw: Any) -> str:
    """The text as stored: one line, single spaces (segments are lines of a transcript and
    of subtitles). Raises EditRefused when empty or too long."""
    if not isinstance(raw, str):
        raise EditRefused(_("Send the corrected text as a string in “text”."), "text_missing")
    text = " ".join(raw.split())
    if not text:
        raise EditRefused(
            _(
                "The text is empty. Write what was said; to drop a segment that is only "
                "noise, write what is heard (for example “(noise)”)."
            ),
            "text_empty",
        )
    if len(text) > MAX_TEXT_CHARS:
        raise EditRefused(
            _("The text has %(count)d characters; a segment holds at most %(limit)d. Shorten it.")
            % {"count": len(text), "limit": MAX_TEXT_CHARS},
            "text_too_long",
        )
    return text


def clean_version(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise EditRefused(
            _(
                "Send “version”: the version of the segment you corrected, as the segment "
                "showed it (load the segment again if you do not have it)."
            ),
            "version_missing",
        )
    return raw


def edit_text(segment: Segment, text: Any, version: Any, user) -> Segment:
    """Correct ``segment``'s text as of ``version``; returns the segment as stored. An edit
    that changes nothing changes nothing (not even the version). Raises EditRefused or
    EditConflict. The segment's keywords are extracted again once the edit is committed."""
    text = clean_text(text)
    version = clean_version(version)
    with transaction.atomic():
        # The lock the transcription's writers take (finals.py, pipeline claim): no job
        # starts writing this transcript's segments until the edit is in.
        status = (
            Transcript.objects.select_for_update()
            .filter(pk=segment.transcript_id)
            .values_list("status", flat=True)
            .get()
        )
        if status not in EDITABLE:
            raise EditRefused(
                _(
                    "This transcript is still being transcribed, and the transcription would "
                    "write over your correction. Correct it once it is done."
                ),
                "not_finished",
                status=409,
            )
        current = (
            Segment.objects.select_for_update(of=("self",))
            .select_related("edited_by", "speaker")
            .get(pk=segment.pk)
        )
        if current.version != version:
            raise EditConflict(current)
        if current.text == text:
            return current
        previous, current.text = current.text, text
        note_correction(current, previous, user)
        current.save(update_fields=["text", "original_text", "version", "edited_at", "edited_by"])
    return current


def note_correction(segment: Segment, previous_text: str, user) -> None:
    """Record on ``segment`` (its text just changed from ``previous_text``; the caller
    saves it) that a person corrected it: the machine's text kept on the first correction,
    the version raised, who and when; its keywords are extracted again once committed.
    The API and the admin both correct through here."""
    if segment.edited_at is None:
        segment.original_text = previous_text
    segment.version += 1
    segment.edited_at = timezone.now()
    segment.edited_by = user if getattr(user, "is_authenticated", False) else None
    transaction.on_commit(lambda pk=segment.pk: _extract_keywords(pk))


def _extract_keywords(segment_id: int) -> None:
    from keywords.tasks import extract_segment_keywords

    extract_segment_keywords.delay(segment_id, live_events=False)


def machine_fields(segment: Segment | None, fields: dict[str, Any]) -> dict[str, Any]:
    """What a transcription's writer may write over an existing ``segment``: everything it
    has, except the text when a person corrected it: theirs stays, and ``original_text``
    keeps the machine's first reading."""
    if segment is None or segment.edited_at is None or "text" not in fields:
        return fields
    kept = dict(fields)
    kept.pop("text")
    return kept
