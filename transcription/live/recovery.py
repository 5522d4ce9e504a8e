"""A live session's speech that Redis lost, found again in PostgreSQL and the recording.

Utterance audio handed to a worker, the queued jobs and the session's numbering live in
Redis; a Redis that restarts empty loses them, while the recording holds every second the
consumer received (read from the web process's spool while it streams, else from storage). What was lost is where the stored finals leave a stretch of
the recording uncovered and a number unused:

- between two stored finals whose numbers are not consecutive: the utterances numbered in
  between were cut there (an utterance's number rises with its place on the timeline);
- after the last stored final, up to where the lost stream's cutting reached.

Such a stretch is cut again with the live endpointer and each utterance goes to a worker
as a final with one of the unused numbers, in order. (Numbers in between can also be
utterances whose text was empty, noise: cut again, they come back empty.) A final of the
same speech still on its way is not stored twice: see finals.py.

After such a loss a resumed stream does not know how far the lost stream numbered, so it
numbers after a reserve of numbers for the stretch after the last stored final.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass

import numpy as np
from channels.db import database_sync_to_async
from django.db.models import Max

from transcription import storage
from transcription.live import dispatch, store
from transcription.live.recording import SAMPLE_RATE, Reader, file_reader, read_span, recorded_s
from transcription.live.session import SendUtterance
from transcription.live.store import StreamState
from transcription.models import Transcript
from transcription.speech.endpointing import Endpointer, EndpointerConfig, Utterance

log = logging.getLogger(__name__)

# How far back from the end a loss is looked for: Redis holds at most the backlog of
# finals waiting for a worker, never more than a few minutes of a session.
LOOKBACK_S = 600.0
# The least an utterance takes on the timeline (its speech and the silence that ends it,
# VAD_MIN_SPEECH_MS + VAD_MIN_SILENCE_MS by default): bounds how many numbers a lost
# stream can have used in a stretch.
MIN_UTTERANCE_S = 0.75


@dataclass(frozen=True)
class Stretch:
    """Seconds ``start`` to ``end`` of the recording, whose utterances take the numbers
    ``first_index`` to ``first_index + slots - 1``."""

    start: float
    end: float
    first_index: int
    slots: int


def recording_reader(name: str) -> Reader:
    """The recording ``name`` as this process reads it best: the spool on this host (the
    web process streaming it; on the file system, the stored file itself), else the stored
    object, by ranges."""
    try:
        spool = storage.spool_path(name)
    except ValueError:
        return storage.reader(name)
    return file_reader(spool) if spool.exists() else storage.reader(name)


def reserve(stretch_s: float) -> int:
    """How many numbers a stream can have used in ``stretch_s`` seconds."""
    return math.ceil(max(stretch_s, 0.0) / MIN_UTTERANCE_S) + 1


def lost_stretches(
    rows: list[tuple[int, float, float]],
    until_s: float,
    next_index: int,
    lookback_s: float = LOOKBACK_S,
) -> list[Stretch]:
    """The stretches of the recording up to ``until_s`` whose finals may be lost, given the
    stored ``rows`` (index, start, end) and the first number of the stream going on."""
    since = until_s - lookback_s
    stretches = []
    previous_index, previous_end = -1, 0.0
    for index, start, end in [*sorted(rows), (next_index, until_s, until_s)]:
        slots = index - previous_index - 1
        if slots > 0 and start > previous_end and start > since:
            stretches.append(
                Stretch(max(previous_end, since, 0.0), start, previous_index + 1, slots)
            )
        if end > previous_end:
            previous_end = end
        previous_index = max(previous_index, index)
    return stretches


def fit(spans: list[tuple[float, float]], slots: int) -> list[tuple[float, float]]:
    """``spans`` in at most ``slots`` spans: the two with the shortest pause between them
    are joined until they fit (a stretch cut into more utterances than numbers are free)."""
    spans = list(spans)
    while len(spans) > max(slots, 0) and len(spans) > 1:
        pauses = [spans[i + 1][0] - spans[i][1] for i in range(len(spans) - 1)]
        i = pauses.index(min(pauses))
        spans[i : i + 2] = [(spans[i][0], spans[i + 1][1])]
    return spans if slots > 0 else []


def cut(audio: np.ndarray, offset: float) -> list[tuple[float, float]]:
    """The utterances the live endpointer finds in ``audio`` (starting at ``offset`` on the
    timeline), as spans on the timeline."""
    endpointer = Endpointer(EndpointerConfig.from_settings(partial_interval_s=0))
    events = endpointer.feed(audio) + endpointer.flush()
    return [
        (round(offset + e.start, 3), round(offset + e.end, 3))
        for e in events
        if isinstance(e, Utterance)
    ]


def recover(session: str, language: str, until_s: float, next_index: int) -> int:
    """Cut the lost stretches of ``session`` (up to ``until_s``) again from its recording
    and send their utterances to the workers; returns how many were sent."""
    transcript = Transcript.objects.get(pk=session)
    if not transcript.audio.name:
        return 0  # not recorded: what Redis lost is lost
    recording = recording_reader(transcript.audio.name)
    rows = list(transcript.segments.values_list("index", "start", "end"))
    sent = 0
    for stretch in lost_stretches(rows, until_s, next_index):
        audio = read_span(recording, stretch.start, stretch.end)
        if audio is None:
            continue
        spans = fit(cut(audio, stretch.start), stretch.slots)
        for number, (start, end) in enumerate(spans):
            first = round((start - stretch.start) * SAMPLE_RATE)
            last = round((end - stretch.start) * SAMPLE_RATE)
            action = SendUtterance(stretch.first_index + number, start, end, audio[first:last])
            dispatch.send_utterance(session, language, action)
            sent += 1
    if sent:
        log.warning("live session %s: %d utterances lost with Redis sent again", session, sent)
    return sent


def resume_point(session: str, language: str) -> StreamState:
    """Where a resumed stream of ``session`` goes on when Redis holds no state for it (it
    expired, or Redis lost it): after the stored rows, the recording and a reserve of
    numbers for the stretch after the last stored final, which is sent to the workers
    again with the earlier lost stretches."""
    transcript = Transcript.objects.get(pk=session)
    last = transcript.segments.aggregate(end=Max("end"), index=Max("index"))
    stored_end = float(last["end"] or 0.0)
    first_free = last["index"] + 1 if last["index"] is not None else 0
    recorded = 0.0
    if transcript.audio.name:
        recorded = recorded_s(recording_reader(transcript.audio.name))
    position = max(stored_end, recorded)
    next_index = first_free + (reserve(recorded - stored_end) if recorded > stored_end else 0)
    try:
        recover(session, language, recorded, next_index)
    except Exception:  # the resume matters more than what it finds again
        log.exception("live session %s: lost speech not recovered", session)
    return StreamState(position, next_index)


async def hold(consumer) -> None:
    """Renew a streaming consumer's hold on its session (``LiveConsumer._status``); when
    the hold was gone, Redis lost the session's state under the stream: its event numbers
    go on after the client's, and the utterances it cut so far whose finals are not stored
    are sent to the workers again from the recording."""
    live, endpointer = consumer.session, consumer.endpointer
    held = await asyncio.to_thread(store.hold_session, live.session, consumer.channel_name)
    if held != store.Hold.LOST:
        return
    log.warning("live session %s: its state in Redis is gone; recovering", live.session)
    await asyncio.to_thread(store.seq_at_least, live.session, consumer.last_seq)
    # Only what the endpointer has cut: the utterance in progress goes on as usual.
    until = live.offset + endpointer.position_s - endpointer.buffered_s
    # Numbers of utterances still in progress are theirs.
    bound = min([live.next_utterance, *live.utterance_ids.values()])
    await database_sync_to_async(recover)(live.session, consumer.language, until, bound)
