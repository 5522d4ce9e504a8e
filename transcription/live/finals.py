"""Storing a live final as a segment, never over another utterance's.

A final's segment index is its utterance number, so a redelivered task rewrites its own row.
But numbers can meet after Redis lost a session's state: a worker may still finish an
utterance of the stream before the loss while the resumed stream numbers from the stored
rows, and the recording's lost stretch is transcribed again (recovery.py) while a job of
the same speech may still be running. The timeline tells them apart: a final is the same
utterance as a stored row when their spans overlap, whatever their numbers.

- the row at the final's index overlaps it: the same utterance, rewritten (a redelivery);
- another row overlaps it: that speech is stored already, under its own number; nothing
  is written;
- its index is taken by a row elsewhere on the timeline: another utterance holds that
  number, and the final gets the next number after the session's highest;
- otherwise it is stored at its index.
Writers of one session take turns on its transcript row, so two of them never both decide
that a span or a number is free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Max

from transcription.editing import machine_fields
from transcription.models import Segment, Transcript

# Two spans are the same speech when they share at least this share of the shorter one:
# the live endpointer and a recovery's cut of the same audio differ by a VAD window or two.
SAME_SPEECH_SHARE = 0.5


def overlap_share(a: tuple[float, float], b: tuple[float, float]) -> float:
    """How much of the shorter of spans ``a`` and ``b`` the two share, 0 to 1."""
    shared = min(a[1], b[1]) - max(a[0], b[0])
    if shared <= 0:
        return 0.0
    return shared / max(min(a[1] - a[0], b[1] - b[0]), 0.01)


@dataclass(frozen=True)
class Placement:
    """Where a final goes: ``index``, and ``existing``, the row it rewrites (or, with
    ``stored_already``, the row already holding its speech)."""

    index: int
    existing: int | None = None
    stored_already: bool = False


def place(
    index: int, span: tuple[float, float], rows: list[tuple[int, int, float, float]]
) -> Placement:
    """Where a final of utterance ``index`` over ``span`` goes among the session's stored
    ``rows`` (pk, index, start, end); the rule of this module's docstring."""
    overlapping = [r for r in rows if overlap_share(span, (r[2], r[3])) >= SAME_SPEECH_SHARE]
    for pk, row_index, _start, _end in overlapping:
        if row_index == index:
            return Placement(index, existing=pk)
    if overlapping:
        best = max(overlapping, key=lambda r: overlap_share(span, (r[2], r[3])))
        return Placement(best[1], existing=best[0], stored_already=True)
    if any(row_index == index for _pk, row_index, _s, _e in rows):
        return Placement(max(r[1] for r in rows) + 1)
    return Placement(index)


def store_final(
    session: str, index: int, start: float, end: float, fields: dict[str, Any]
) -> tuple[Segment, bool]:
    """Store a final's text and evidence (``fields``) as the rule says; returns the segment
    holding its speech and whether this call wrote it."""
    with transaction.atomic():
        # Writers of this session take turns here.
        Transcript.objects.select_for_update().filter(pk=session).values_list("pk").first()
        near = Segment.objects.filter(transcript_id=session, start__lt=end, end__gt=start)
        rows = list(near.values_list("pk", "index", "start", "end"))
        same = [r for r in rows if r[1] == index]
        if not same and Segment.objects.filter(transcript_id=session, index=index).exists():
            # Taken by a row elsewhere on the timeline: ``place`` only needs to know that.
            rows.append((0, index, -2.0, -1.0))
        placement = place(index, (start, end), rows)
        if placement.stored_already:
            return Segment.objects.get(pk=placement.existing), False
        if placement.existing is not None:
            segment = Segment.objects.get(pk=placement.existing)
            # A person's correction stays (edits wait for the session's end: a guard).
            for name, value in machine_fields(
                segment, {"start": start, "end": end, **fields}
            ).items():
                setattr(segment, name, value)
            segment.save()
            return segment, True
        new_index = placement.index
        if new_index != index:
            highest = Segment.objects.filter(transcript_id=session).aggregate(m=Max("index"))
            new_index = max(highest["m"] + 1, index + 1)
        segment = Segment.objects.create(
            transcript_id=session, index=new_index, start=start, end=end, **fields
        )
        return segment, True
