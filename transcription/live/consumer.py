"""``/ws``: live transcription. Thin: checks, framing and endpointing helpers, dispatch.

Two protocols on one socket (see README, Live protocol):
- the original browser client: ``{"type":"config",...}``, ``{"type":"audio","data":b64}``,
  answered with ``{"type":"transcription",...}`` messages;
- the native one: ``{"type":"start",...}``, binary frames, ``{"type":"stop"}``, answered
  with numbered events (ready, speech_started, partial, final, keywords, status, error,
  stopped) that a client can resume after a dropped connection.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any

import redis
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db.models import Max
from django.utils import timezone

from transcription.access import may_see
from transcription.live import store as live_events
from transcription.live.protocol import (
    PartialGate,
    ProtocolError,
    decode_base64_f32,
    decode_binary,
    parse_message,
    parse_start,
)
from transcription.live.recording import LiveRecording, RecordingError, recording_name
from transcription.models import Transcript
from transcription.notify import group_name
from transcription.speech.endpointing import (
    Endpointer,
    EndpointerConfig,
    Partial,
    Pause,
    Resumed,
    SpeechStarted,
    Utterance,
)
from transcription.web.api import WHISPER_LANGUAGES
from workers.queues import Queue

log = logging.getLogger(__name__)
STATUS_EVERY_S = 2.0
PARTIAL_ANSWER_WAIT_S = 3.0
# How long a resume waits for the connection still holding the session to hand it over.
TAKEOVER_WAIT_S = 3.0
# Slack on top of the silence an early final waits for: frames arrive in bursts.
EARLY_MARGIN_S = 1.5
# How long a final waits for its keywords before the original client gets it without them.
LEGACY_KEYWORD_WAIT_S = 3.0


def _dispatch_utterance(
    transcript_id: str,
    index: int,
    start: float,
    end: float,
    audio,
    language: str,
    early_key: str | None = None,
) -> None:
    from transcription.tasks import transcribe_utterance

    key = f"live:audio:{uuid.uuid4().hex}"
    live_events.put_audio(key, audio.astype("<f4").tobytes())
    early = {}
    if early_key:
        # The worker waits this long (from now) for the silence rule to end the utterance.
        silence_s = (settings.VAD_MIN_SILENCE_MS - settings.LIVE_PAUSE_MS) / 1000
        early = {"early_key": early_key, "early_wait_s": max(silence_s, 0.0) + EARLY_MARGIN_S}
        # A partial still queued is older than this: the worker skips it.
        live_events.mark_latest_partial(transcript_id, f"early:{index}")
    else:
        live_events.mark_latest_partial(transcript_id, f"final:{index}")
    transcribe_utterance.apply_async(
        args=[transcript_id, index, start, end, key, language, time.time()], kwargs=early
    )


# How long the answer of partial_queue() is kept.
PARTIAL_ROUTE_TTL_S = 10


def partial_queue() -> str:
    """Where partial requests go: ``LIVE_PARTIAL_QUEUE``, unless no worker consumes
    ``stt_partial`` (a deployment that runs only stt workers): then the stt workers do them,
    as with ``LIVE_PARTIAL_QUEUE=stt``, rather than leaving them in a queue nobody reads.
    Looked up in the worker heartbeats at most every ``PARTIAL_ROUTE_TTL_S`` seconds."""
    if settings.LIVE_PARTIAL_QUEUE == Queue.STT:
        return Queue.STT.value
    from django.core.cache import cache

    from workers.health import redis_client
    from workers.heartbeat import online_workers

    queue = cache.get("live:partial-queue")
    if queue is None:
        try:
            records = online_workers(redis_client())
        except redis.RedisError:
            return Queue.STT_PARTIAL.value
        served = any(Queue.STT_PARTIAL.value in r.get("queues", []) for r in records)
        queue = Queue.STT_PARTIAL.value if served else Queue.STT.value
        cache.set("live:partial-queue", queue, PARTIAL_ROUTE_TTL_S)
    return queue


def _dispatch_partial(transcript_id: str, token: str, start: float, audio, language: str) -> None:
    from transcription.tasks import transcribe_partial

    key = f"live:audio:{uuid.uuid4().hex}"
    live_events.put_audio(key, audio.astype("<f4").tobytes())
    live_events.mark_latest_partial(transcript_id, token)
    # A partial nobody picked up within a few seconds is stale; the broker drops it.
    transcribe_partial.apply_async(
        args=[transcript_id, token, start, key, language],
        queue=partial_queue(),
        expires=5,
    )


def _finish(transcript_id: str, channel: str, position: float, next_utterance: int) -> None:
    from transcription.tasks import finish_live

    live_events.save_state(
        transcript_id, {"position_s": position, "next_utterance": next_utterance}
    )
    # Released before finish_live is queued: the task marks the session done only while no
    # connection holds it, and a resume that claims it after this point keeps it running.
    live_events.release_session(transcript_id, channel)
    finish_live.apply_async(args=[transcript_id, round(position, 3)])


def _session_key(scope) -> str:
    user = scope.get("user")
    if user is not None and user.is_authenticated:
        return f"live:sessions:user:{user.pk}"
    client = scope.get("client") or ("unknown", 0)
    return f"live:sessions:ip:{client[0]}"


# A session refreshes its entry while it lives; one not refreshed for this long belongs to a
# server that died without running disconnect(), and stops counting against the limit.
SESSION_STALE_S = 120


def _register(key: str, channel: str, limit: int) -> bool:
    client = live_events._client()
    now = time.time()
    pipe = client.pipeline()
    pipe.zremrangebyscore(key, 0, now - SESSION_STALE_S)
    pipe.zadd(key, {channel: now})
    pipe.zcard(key)
    pipe.expire(key, 24 * 3600)
    count = pipe.execute()[2]
    if count > limit:
        client.zrem(key, channel)
        return False
    return True


def _refresh(key: str, channel: str) -> None:
    live_events._client().zadd(key, {channel: time.time()}, xx=True)


def _unregister(key: str, channel: str) -> None:
    live_events._client().zrem(key, channel)


class LiveConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.mode: str | None = None  # "legacy" or "native"
        self.transcript_id: str | None = None
        self.language = settings.DEFAULT_LANGUAGE
        self.encoding = "pcm_s16le"
        self.endpointer: Endpointer | None = None
        self._reset_stream()
        self.last_status = 0.0
        self.last_latency: float | None = None
        self.last_queue_wait: float | None = None
        self.legacy_held: dict[int, tuple[dict, asyncio.TimerHandle]] = {}
        self.recording: LiveRecording | None = None
        self.session_key = None
        await self.accept()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.send_json(
                {"type": "error", "code": "unauthorized", "message": "sign in first"}
            )
            await self.close(code=4401)
            return
        self.session_key = _session_key(self.scope)
        allowed = await asyncio.to_thread(
            _register, self.session_key, self.channel_name, settings.LIVE_MAX_SESSIONS_PER_USER
        )
        if not allowed:
            await self.send_json(
                {
                    "type": "error",
                    "code": "too_many_sessions",
                    "message": f"at most {settings.LIVE_MAX_SESSIONS_PER_USER} live sessions at once",
                }
            )
            self.session_key = None
            await self.close(code=4429)

    def _reset_stream(self) -> None:
        """The per-stream state, fresh for every start or resume on this socket."""
        self.offset = 0.0
        self.next_utterance = 0
        self.utterance_ids: dict[Any, int] = {}
        self.partial_counts: dict[int, int] = {}
        self.partials = PartialGate(PARTIAL_ANSWER_WAIT_S)
        # The early final in flight: (endpointer utterance id, end on the timeline, key).
        self.early: tuple[Any, float, str] | None = None
        # Whether that early final is what the partial gate waits for (LIVE_PARTIAL_QUEUE
        # is stt, or no partial worker runs).
        self.early_holds_partials = False
        # Finals not answered yet: utterance -> (seconds of audio, sent at).
        self.pending: dict[int, tuple[float, float]] = {}

    async def disconnect(self, code: int) -> None:
        if self.session_key:
            await asyncio.to_thread(_unregister, self.session_key, self.channel_name)
        if self.transcript_id:
            # Whatever was said before the socket dropped is still transcribed and stored.
            await self._end_stream(announce=False)
            await self.channel_layer.group_discard(
                group_name(self.transcript_id), self.channel_name
            )
        await asyncio.to_thread(self._close_recording)

    # --- incoming -----------------------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            if bytes_data is not None:
                if self.mode != "native" or self.endpointer is None:
                    raise ProtocolError("not_started", 'send {"type":"start"} before audio frames')
                await self._feed(decode_binary(bytes_data, self.encoding))
            elif text_data is not None:
                await self._on_message(parse_message(text_data))
        except ProtocolError as exc:
            await self._emit(exc.event())

    async def _on_message(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "start":
            await self._start_native(message)
        elif kind == "config":
            language = message.get("language")
            if isinstance(language, str) and (language in WHISPER_LANGUAGES or language == "auto"):
                self.language = language
            if self.mode is None:
                await self._start("legacy")
        elif kind == "audio":
            samples = decode_base64_f32(message.get("data"))
            if self.mode is None:
                await self._start("legacy")
            if self.mode != "legacy" or self.endpointer is None:
                raise ProtocolError("not_started", "this session is stopped; start a new one")
            await self._feed(samples)
        elif kind == "stop":
            if self.endpointer is None:
                raise ProtocolError("not_started", "nothing to stop")
            await self._end_stream(announce=True)
        elif kind == "ping":
            await self._emit({"type": "pong"})
        else:
            raise ProtocolError("unknown_type", f"unknown message type {kind!r}")

    async def _start_native(self, message: dict[str, Any]) -> None:
        if self.endpointer is not None:
            raise ProtocolError("already_started", "this session is running; send stop first")
        options = parse_start(message, settings.DEFAULT_LANGUAGE, WHISPER_LANGUAGES)
        self.language, self.encoding = options.language, options.encoding
        if options.resume_session:
            await self._resume(options.resume_session, options.resume_last_seq)
        else:
            await self._start("native")

    async def _start(self, mode: str) -> None:
        self.mode = mode
        user = self.scope.get("user")
        self._reset_stream()
        self.transcript_id, audio_name = await database_sync_to_async(self._create_transcript)(user)
        await asyncio.to_thread(live_events.claim_session, self.transcript_id, self.channel_name)
        await self.channel_layer.group_add(group_name(self.transcript_id), self.channel_name)
        self.endpointer = self._new_endpointer()
        if audio_name:
            await asyncio.to_thread(self._open_recording, audio_name, 0.0)
            if self.recording is None:  # no player pointing at a file that is not there
                await database_sync_to_async(
                    Transcript.objects.filter(pk=self.transcript_id).update
                )(audio="")
        await self._emit({"type": "ready", "session": self.transcript_id, "resumed": False})

    def _create_transcript(self, user) -> tuple[str, str]:
        pk, now = uuid.uuid4(), timezone.now()
        transcript = Transcript.objects.create(
            pk=pk,
            audio=recording_name(str(pk), timezone.localtime(now))
            if settings.LIVE_KEEP_AUDIO
            else "",
            owner=user if user is not None and user.is_authenticated else None,
            source=Transcript.Source.LIVE,
            status=Transcript.Status.RUNNING,
            language="" if self.language == "auto" else self.language,
            title=f"Live {timezone.localtime(now):%Y-%m-%d %H:%M}",
            started_at=now,
        )
        return str(transcript.pk), transcript.audio.name

    async def _resume(self, session: str, last_seq: int) -> None:
        user = self.scope.get("user")
        if not await database_sync_to_async(self._may_resume)(session, user):
            raise ProtocolError("unknown_session", "no live session with that id to resume")
        await self._take_over(session)
        last_end, next_index, audio_name = await database_sync_to_async(self._reopen)(session)
        self._reset_stream()
        self.mode = "native"
        self.transcript_id = session
        # The saved state can be older than the rows (it expires; a web process that died
        # never saved it): the furthest point any of them reached is where the timeline goes
        # on, so that no new segment overlaps an old one and no index is used twice.
        state = await asyncio.to_thread(live_events.load_state, session)
        self.next_utterance = max(int(state.get("next_utterance", 0)), next_index)
        self.offset = max(float(state.get("position_s", 0.0)), last_end)
        self.endpointer = self._new_endpointer()
        if audio_name and settings.LIVE_KEEP_AUDIO:
            self.offset = await asyncio.to_thread(self._open_recording, audio_name, self.offset)
        await self.channel_layer.group_add(group_name(session), self.channel_name)
        missed = await asyncio.to_thread(live_events.replay, session, last_seq)
        for event in missed:
            await self.send_json(event)
        await self._emit(
            {"type": "ready", "session": session, "resumed": True, "replayed": len(missed)}
        )

    def _may_resume(self, session: str, user) -> bool:
        try:
            transcript = Transcript.objects.get(pk=session, source=Transcript.Source.LIVE)
        except (Transcript.DoesNotExist, ValueError, ValidationError):  # a malformed id too
            return False
        return may_see(user, transcript)

    async def _take_over(self, session: str) -> None:
        """Ask the connection still holding the session to hand it over, and wait until it
        has (its buffered speech flushed, its recording closed, its state saved). One whose
        process died never answers: after TAKEOVER_WAIT_S the session is taken anyway."""
        holder = await asyncio.to_thread(live_events.session_owner, session)
        if holder and holder != self.channel_name:
            await self.channel_layer.send(holder, {"type": "live.takeover"})
            deadline = time.monotonic() + TAKEOVER_WAIT_S
            while time.monotonic() < deadline:
                if await asyncio.to_thread(live_events.session_owner, session) != holder:
                    break
                await asyncio.sleep(0.05)
            else:
                log.warning("live session %s: %s did not hand over; taking it", session, holder)
        await asyncio.to_thread(live_events.claim_session, session, self.channel_name)

    async def live_takeover(self, message: dict[str, Any]) -> None:
        """Another connection resumes this session: end this stream (what was said is still
        transcribed), tell the client and close without it reconnecting (close code 4409)."""
        session = self.transcript_id
        if session is None:
            return
        await self._end_stream(announce=False)
        await self.channel_layer.group_discard(group_name(session), self.channel_name)
        self.transcript_id = None
        # Not recorded in the session's event log: the client that resumed must not get it.
        await self.send_json(
            {
                "type": "error",
                "code": "taken_over",
                "message": "this session goes on in another connection",
            }
        )
        await self.close(code=4409)

    def _reopen(self, session: str) -> tuple[float, int, str]:
        transcript = Transcript.objects.get(pk=session)
        Transcript.objects.filter(pk=session).update(
            status=Transcript.Status.RUNNING, finished_at=None
        )
        last = transcript.segments.aggregate(end=Max("end"), index=Max("index"))
        return (
            float(last["end"] or 0.0),
            int(last["index"] + 1 if last["index"] is not None else 0),
            transcript.audio.name,
        )

    # --- recording ----------------------------------------------------------------------
    def _open_recording(self, name: str, offset: float) -> float:
        """Open the session's recording and line it up with the timeline at ``offset``, or
        at its own end where it goes further (audio is written before the endpointer sees
        it, so a longer file is the truer timeline); never cuts it. Returns the offset."""
        recording = None
        try:
            recording = LiveRecording(default_storage.path(name))
            offset = max(offset, recording.duration_s)
            recording.align(offset)
        except (OSError, RecordingError, NotImplementedError) as exc:
            # The transcript matters more than the recording: go on without one.
            log.warning("live session %s is not recorded: %s", self.transcript_id, exc)
            if recording is not None:
                recording.close()
            return offset
        self.recording = recording
        return offset

    def _record(self, samples) -> None:
        if self.recording is None:
            return
        try:
            self.recording.append(samples)
        except (OSError, RecordingError) as exc:  # a full disk: stop recording, keep going
            log.warning("live session %s stopped recording: %s", self.transcript_id, exc)
            self._close_recording()

    def _close_recording(self) -> None:
        recording, self.recording = self.recording, None
        if recording is not None:
            recording.close()

    # --- audio --------------------------------------------------------------------------
    async def _feed(self, samples) -> None:
        if samples.size == 0:
            return
        events = await asyncio.to_thread(self._take, samples)
        await self._handle(events)
        now = time.monotonic()
        if now - self.last_status >= STATUS_EVERY_S:
            await self._status()

    def _take(self, samples):
        self._record(samples)
        return self.endpointer.feed(samples)

    async def _handle(self, events) -> None:
        for event in events:
            if isinstance(event, SpeechStarted):
                await self._emit({"type": "speech_started", "at": round(self.offset + event.at, 3)})
            elif isinstance(event, Partial):
                if self.partials.busy:
                    continue
                index = self._index(event.utterance_id)
                self.partials.sent(index)
                count = self.partial_counts.get(index, 0) + 1
                self.partial_counts[index] = count
                await asyncio.to_thread(
                    _dispatch_partial,
                    self.transcript_id,
                    f"{index}:{count}",
                    round(self.offset + event.start, 3),
                    event.audio,
                    self.language,
                )
            elif isinstance(event, Pause):
                await self._settle_early(live_events.VOID)
                if self.pending or not self.transcript_id:
                    continue  # finals are waiting: no guesses in front of them
                index = self._index(event.utterance_id)
                start, end = self._span(event)
                key = live_events.early_key(self.transcript_id, index, end)
                self.early = (event.utterance_id, end, key)
                if await asyncio.to_thread(partial_queue) == Queue.STT:
                    # One worker does both: no partial in front of the guess at the final.
                    self.partials.sent(index)
                    self.early_holds_partials = True
                await self._send_utterance(index, start, end, event.audio, key)
            elif isinstance(event, Resumed):
                if self.early and self.early[0] == event.utterance_id:
                    await self._settle_early(live_events.VOID)
                    if self.early_holds_partials:
                        # A guess still queued is now skipped and never answers: interim
                        # text may be asked for again at once.
                        self.partials.release()
                        self.early_holds_partials = False
            elif isinstance(event, Utterance):
                index = self._index(event.utterance_id)
                self.utterance_ids.pop(event.utterance_id, None)
                start, end = self._span(event)
                self.pending[index] = (end - start, time.time())
                early = self.early
                if early and early[0] == event.utterance_id and early[1] == end:
                    if await self._settle_early(live_events.FINAL) == live_events.FINAL:
                        continue  # the worker already has it: the pause was the end
                else:
                    await self._settle_early(live_events.VOID)
                await self._send_utterance(index, start, end, event.audio)

    def _new_endpointer(self) -> Endpointer:
        return Endpointer(
            EndpointerConfig.from_settings(
                partial_interval_s=settings.LIVE_PARTIAL_INTERVAL_S,
                pause_events=settings.LIVE_EARLY_FINALS,
                pause_ms=settings.LIVE_PAUSE_MS,
            )
        )

    def _span(self, event: Pause | Utterance) -> tuple[float, float]:
        """An endpointer event's start and end on the session's timeline."""
        return round(self.offset + event.start, 3), round(self.offset + event.end, 3)

    async def _send_utterance(
        self, index: int, start: float, end: float, audio, early_key: str | None = None
    ) -> None:
        await asyncio.to_thread(
            _dispatch_utterance,
            self.transcript_id,
            index,
            start,
            end,
            audio,
            self.language,
            early_key,
        )

    async def _settle_early(self, decision: str) -> str | None:
        """Tell the worker holding the early final what became of its pause."""
        early, self.early = self.early, None
        if early is None:
            return None
        return await asyncio.to_thread(live_events.settle_early, early[2], decision)

    def _index(self, utterance_id) -> int:
        if utterance_id not in self.utterance_ids:
            self.utterance_ids[utterance_id] = self.next_utterance
            self.next_utterance += 1
        return self.utterance_ids[utterance_id]

    async def _end_stream(self, *, announce: bool) -> None:
        if self.endpointer is None:
            return
        endpointer, self.endpointer = self.endpointer, None
        try:
            holder = await asyncio.to_thread(live_events.session_owner, self.transcript_id)
            if holder not in (None, self.channel_name):
                # Taken over without us (this connection was silent too long to answer):
                # the holder goes on from the saved state; writing ours would set it back.
                log.warning(
                    "live session %s ended here after %s took it", self.transcript_id, holder
                )
                return
            await self._handle(await asyncio.to_thread(endpointer.flush))
            position = self.offset + endpointer.position_s
            # Closed before _finish lets the session go: a connection taking it over opens
            # the file next. (The finally only covers the paths that never get here.)
            await asyncio.to_thread(self._close_recording)
            await asyncio.to_thread(
                _finish, self.transcript_id, self.channel_name, position, self.next_utterance
            )
        finally:
            await asyncio.to_thread(self._close_recording)
        if announce:
            await self._emit(
                {"type": "stopped", "session": self.transcript_id, "duration": round(position, 3)}
            )

    async def _status(self) -> None:
        self.last_status = time.monotonic()
        if self.session_key:
            await asyncio.to_thread(_refresh, self.session_key, self.channel_name)
        buffered = self.endpointer.buffered_s if self.endpointer is not None else 0.0
        backlog = sum(seconds for seconds, _sent in self.pending.values()) + buffered
        oldest = min((sent for _s, sent in self.pending.values()), default=None)
        await self._emit(
            {
                "type": "status",
                "backlog_s": round(backlog, 2),
                "pending_utterances": len(self.pending),
                "oldest_pending_s": round(time.time() - oldest, 2) if oldest else 0.0,
                "queue_wait_s": self.last_queue_wait,
                "last_latency_s": self.last_latency,
                "behind": backlog > settings.LIVE_BACKLOG_WARN_S,
            }
        )

    # --- outgoing -----------------------------------------------------------------------
    async def _emit(self, event: dict[str, Any]) -> None:
        if self.mode == "legacy":
            if event["type"] == "error":
                await self.send_json(event)
            return
        if self.transcript_id:
            event = await asyncio.to_thread(live_events.record, self.transcript_id, event)
        await self.send_json(event)

    async def send_json(self, content: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(content, ensure_ascii=False))

    async def transcript_event(self, message: dict[str, Any]) -> None:
        event = message["event"]
        self.partials.answered_by(event)
        if event.get("type") == "final":
            sent = self.pending.pop(event.get("utterance"), None)
            if sent is not None:
                self.last_latency = round(time.time() - sent[1], 3)
            self.last_queue_wait = event.get("queue_wait_s")
        if self.mode == "legacy":
            await self._legacy(event)
        else:
            await self.send_json(event)
        if event.get("type") == "final" and self.transcript_id:
            await self._status()

    async def _legacy(self, event: dict[str, Any]) -> None:
        """The original client gets one ``transcription`` message per utterance, with keywords."""
        if event.get("type") == "final" and event.get("text"):
            segment = event.get("segment")
            loop = asyncio.get_running_loop()
            timer = loop.call_later(
                LEGACY_KEYWORD_WAIT_S,
                lambda: asyncio.ensure_future(self._legacy_release(segment, [])),
            )
            self.legacy_held[segment] = (event, timer)
        elif event.get("type") == "keywords" and event.get("segment") in self.legacy_held:
            await self._legacy_release(event["segment"], event.get("items") or [])

    async def _legacy_release(self, segment: int, keywords: list[dict]) -> None:
        held = self.legacy_held.pop(segment, None)
        if held is None:
            return
        final, timer = held
        timer.cancel()
        await self.send_json(
            {
                "type": "transcription",
                "text": final["text"],
                "keywords": [
                    {"word": k["word"], "category": k["category"], "importance": k["importance"]}
                    for k in keywords
                ],
                "language": final.get("language"),
                "confidence": final.get("confidence"),
                "device": final.get("device"),
                "timestamp": final.get("timestamp"),
            }
        )
