"""Who speaks in a transcript: speakers people name and assign to runs of segments, and the
labels an automatic diarization backend writes (speech/diarization.py). Plain functions
behind the speaker API and the batch pipeline."""

from __future__ import annotations

import logging
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from transcription.editing import EditRefused
from transcription.models import Segment, Speaker, Transcript

log = logging.getLogger(__name__)

MAX_NAME_CHARS = 100


class SpeakerRefused(EditRefused):
    """A speaker change that cannot be made as asked; ``message`` says what to do instead."""


def clean_name(raw: Any) -> str:
    if not isinstance(raw, str) or not " ".join(raw.split()):
        raise SpeakerRefused(_("Give the speaker a name in “name”."), "name_missing")
    name = " ".join(raw.split())
    if len(name) > MAX_NAME_CHARS:
        raise SpeakerRefused(
            _("A speaker's name holds at most %(limit)d characters; shorten it.")
            % {"limit": MAX_NAME_CHARS},
            "name_too_long",
        )
    return name


def speaker_named(transcript: Transcript, name: Any) -> tuple[Speaker, bool]:
    """The transcript's speaker called ``name``, made if there is none; (speaker, made)."""
    name = clean_name(name)
    found = transcript.speakers.filter(name=name).first()
    if found is not None:
        return found, False
    try:
        with transaction.atomic():
            return Speaker.objects.create(transcript=transcript, name=name), True
    except IntegrityError:  # made by someone else just now
        return transcript.speakers.get(name=name), False


def rename(speaker: Speaker, name: Any) -> Speaker:
    name = clean_name(name)
    if speaker.name == name:
        return speaker
    taken = Speaker.objects.filter(transcript_id=speaker.transcript_id, name=name)
    if taken.exclude(pk=speaker.pk).exists():
        raise SpeakerRefused(
            _(
                "Another speaker of this transcript is called “%(name)s”. Assign these "
                "segments to that speaker instead, or choose another name."
            )
            % {"name": name},
            "name_taken",
        )
    speaker.name = name
    try:
        with transaction.atomic():
            speaker.save(update_fields=["name"])
    except IntegrityError:
        raise SpeakerRefused(
            _("Another speaker was just given that name; choose another."), "name_taken"
        ) from None
    return speaker


def _index(raw: Any, field: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise SpeakerRefused(
            _("“%(field)s” must be a segment's index (a whole number from 0).") % {"field": field},
            "bad_range",
        )
    return raw


def assign(transcript: Transcript, speaker: Speaker | None, first: Any, last: Any = None) -> int:
    """Give the segments with index ``first`` to ``last`` (both included; ``last`` defaults
    to ``first``) to ``speaker`` (None: no speaker). Returns how many there were."""
    first = _index(first, "first")
    last = first if last is None else _index(last, "last")
    if last < first:
        first, last = last, first  # a run selected from its end
    if speaker is not None and speaker.transcript_id != transcript.pk:
        raise SpeakerRefused(_("That speaker belongs to another transcript."), "bad_speaker")
    count = Segment.objects.filter(transcript=transcript, index__gte=first, index__lte=last).update(
        speaker=speaker
    )
    if not count:
        raise SpeakerRefused(
            _("No segment of this transcript has an index from %(first)d to %(last)d.")
            % {"first": first, "last": last},
            "bad_range",
        )
    return count


def apply_labels(transcript: Transcript, labels: dict[int, str | None]) -> int:
    """Write a diarization backend's ``labels`` ({segment id: label or None}) as speakers
    with those machine labels. Segments people already assigned keep their speaker. Returns
    how many segments got one."""
    by_label: dict[str, Speaker] = {}
    count = 0
    with transaction.atomic():
        for segment_id, label in labels.items():
            if not label:
                continue
            if label not in by_label:
                by_label[label], _made = Speaker.objects.get_or_create(
                    transcript=transcript, label=label
                )
            count += Segment.objects.filter(
                pk=segment_id, transcript=transcript, speaker__isnull=True
            ).update(speaker=by_label[label])
    return count
