"""``/ws``: live transcription. Thin: who may connect, how many sessions, bytes in, events
out; what to do with the audio is decided by ``LiveSession`` (session.py).

Two protocols on one socket (see README, Live protocol):
- the original browser client: ``{"type":"config",...}``, ``{"type":"audio","data":b64}``,
  answered with ``{"type":"transcription",...}`` messages;
- the native one: ``{"type":"start",...}``, binary frames, ``{"type":"stop"}``, answered
  with numbered events (ready, speech_started, partial, final, keywords, status, error,
  stopped) that a client can resume after a dropped connection. ``stopped`` is the last:
  the session decides when (``LiveSession.stop``), as the stream's finals and keywords
  come in here one message at a time; the stop handler never waits for them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import Error as DatabaseError

from sttproject.websocket import MESSAGE_TOO_BIG, oversized_event
from transcription.live import dispatch, records, recovery, store
from transcription.live import session as act
from transcription.live.protocol import (
    ProtocolError,
    decode_base64_f32,
    decode_binary,
    parse_message,
    parse_start,
)
from transcription.live.session import LiveSession, Mode, live_endpointer
from transcription.live.store import Decision, StreamState
from transcription.notify import group_name
from transcription.speech.endpointing import Endpointer, Pause
from transcription.speech.languages import WHISPER_LANGUAGES
from workers import metrics

log = logging.getLogger(__name__)
STATUS_EVERY_S = 2.0
# How long a resume waits for the connection still holding the session to hand it over.
TAKEOVER_WAIT_S = 3.0


class LiveConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.session: LiveSession | None = None
        self.mode: Mode | None = None
        self.language = settings.DEFAULT_LANGUAGE
        self.encoding = "pcm_s16le"
        self.endpointer: Endpointer | None = None
        self.recorder: records.Recorder | None = None
        self.last_status = 0.0
        self.limit_key: str | None = None
        self.last_seq = 0  # of the events this client got: numbers go on after it
        # The bound on the wait for ``stopped`` (LIVE_STOP_WAIT_S); the number tells a
        # timer of an earlier stop from the current one.
        self.stop_timer: asyncio.Task | None = None
        self.stop_timers = 0
        self.counted = False  # in stt_live_sessions_active
        await self.accept()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self._refuse("unauthorized", "sign in first", 4401)
            return
        key, limit = store.limit_key(user.pk), settings.LIVE_MAX_SESSIONS_PER_USER
        if not await asyncio.to_thread(store.register, key, self.channel_name, limit):
            await self._refuse("too_many_sessions", f"at most {limit} live sessions at once", 4429)
            return
        self.limit_key = key
        self.counted = True
        metrics.LIVE_ACTIVE.inc()
        metrics.LIVE_SESSIONS.inc()

    async def _refuse(self, code: str, message: str, close_code: int) -> None:
        await self.send_json({"type": "error", "code": code, "message": message})
        await self.close(code=close_code)

    async def disconnect(self, code: int) -> None:
        self._disarm_stop_timer()  # no ``stopped`` for a socket that is gone
        if getattr(self, "counted", False):
            self.counted = False
            metrics.LIVE_ACTIVE.dec()
        if self.limit_key:
            await asyncio.to_thread(store.unregister, self.limit_key, self.channel_name)
        if self.session:
            # Whatever was said before the socket dropped is still transcribed and stored.
            await self._end_stream(announce=False)
            await self.channel_layer.group_discard(
                group_name(self.session.session), self.channel_name
            )
        await self._close_recording()

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

    async def websocket_oversized(self, message: dict[str, Any]) -> None:
        """A message over the server's transport limit, not read (sttproject/websocket.py):
        an error like any other (numbered in a native session), then close 1009; the
        session ends as on any disconnect, so what came before the message is kept."""
        await self._emit(oversized_event(message))
        await self.close(code=MESSAGE_TOO_BIG)

    async def _on_message(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "start":
            if self.endpointer is not None:
                raise ProtocolError("already_started", "this session is running; send stop first")
            options = parse_start(message, settings.DEFAULT_LANGUAGE, WHISPER_LANGUAGES)
            # A start before the last stop's ``stopped``: that stop ends now (what it still
            # waits for is named), so the old stream's events never follow the new ``ready``.
            await self._finish_stop()
            self.language, self.encoding = options.language, options.encoding
            if options.resume_session:
                await self._resume(options.resume_session, options.resume_last_seq)
            else:
                await self._start("native")
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

    def _new_session(self, session: str, offset: float = 0.0, next_utterance: int = 0) -> None:
        self.session = LiveSession(
            session, mode=self.mode or "native", offset=offset, next_utterance=next_utterance
        )
        self.recorder = records.Recorder(session)
        self.endpointer = live_endpointer()

    async def _start(self, mode: Mode) -> None:
        self.mode = mode
        user = self.scope.get("user")
        session, audio_name = await database_sync_to_async(records.create_transcript)(
            user, self.language
        )
        await asyncio.to_thread(store.claim_session, session, self.channel_name)
        await self.channel_layer.group_add(group_name(session), self.channel_name)
        self._new_session(session)
        if audio_name:
            await asyncio.to_thread(self.recorder.open, audio_name, 0.0)
            if not self.recorder.is_open:
                await database_sync_to_async(records.forget_recording)(session)
        await self._emit({"type": "ready", "session": session, "resumed": False})

    async def _resume(self, session: str, last_seq: int) -> None:
        user = self.scope.get("user")
        if not await database_sync_to_async(records.may_resume)(session, user):
            raise ProtocolError("unknown_session", "no live session with that id to resume")
        await self._take_over(session)
        self.last_seq = max(self.last_seq, last_seq)
        reopen = database_sync_to_async(records.reopen)
        point, audio_name = await reopen(session, self.language, self.last_seq)
        self.mode = "native"
        offset = point.position_s
        self._new_session(session, offset, point.next_utterance)
        if audio_name and settings.LIVE_KEEP_AUDIO:
            self.session.offset = await asyncio.to_thread(self.recorder.open, audio_name, offset)
        await self.channel_layer.group_add(group_name(session), self.channel_name)
        missed = await asyncio.to_thread(store.replay, session, last_seq)
        for event in missed:
            await self.send_json(event)
        await self._emit(
            {"type": "ready", "session": session, "resumed": True, "replayed": len(missed)}
        )

    async def _take_over(self, session: str) -> None:
        """Ask the connection still holding the session to hand it over, and wait until it
        has (its buffered speech flushed, its recording closed, its state saved). One whose
        process died never answers: after TAKEOVER_WAIT_S the session is taken anyway."""
        holder = await asyncio.to_thread(store.session_owner, session)
        if holder and holder != self.channel_name:
            await self.channel_layer.send(holder, {"type": "live.takeover"})
            if not await store.wait_for_handover(session, holder, TAKEOVER_WAIT_S):
                log.warning("live session %s: %s did not hand over; taking it", session, holder)
        await asyncio.to_thread(store.claim_session, session, self.channel_name)

    async def live_takeover(self, message: dict[str, Any]) -> None:
        """Another connection resumes this session: end this stream (what was said is still
        transcribed), tell the client and close without it reconnecting (close code 4409)."""
        if self.session is None:
            return
        session = self.session.session
        await self._end_stream(announce=False)
        await self.channel_layer.group_discard(group_name(session), self.channel_name)
        self.session = None
        # Not recorded in the session's event log: the client that resumed must not get it.
        await self._refuse("taken_over", "this session goes on in another connection", 4409)

    # --- audio --------------------------------------------------------------------------
    async def _feed(self, samples) -> None:
        if samples.size == 0:
            return
        await self._on_audio_events(await asyncio.to_thread(self._take, samples))
        if time.monotonic() - self.last_status >= STATUS_EVERY_S:
            await self._status()

    def _take(self, samples) -> list:
        self.recorder.append(samples)
        return self.endpointer.feed(samples)

    async def _on_audio_events(self, events: list) -> None:
        # The session runs on the event loop only (worker events reach it there too).
        on_stt = False
        if any(isinstance(event, Pause) for event in events):
            on_stt = await asyncio.to_thread(dispatch.partials_on_stt)
        await self._run(self.session.on_audio_events(events, partials_on_stt=on_stt))

    async def _run(self, actions: list[act.Action]) -> None:
        """Carry out what the session decided, in order."""
        session = self.session
        if session is None:
            return
        for action in actions:
            if isinstance(action, act.Emit):
                await self._emit(action.event)
            elif isinstance(action, act.Send):
                await self.send_json(action.message)
            elif isinstance(action, act.SendUtterance | act.SendPartial):
                # The language as it is now: the original client may change it mid-session.
                await asyncio.to_thread(dispatch.send, session.session, self.language, action)
            elif isinstance(action, act.Settle):
                standing = await asyncio.to_thread(store.settle_early, action.key, action.decision)
                if action.otherwise is not None and standing != Decision.FINAL:
                    await self._run([action.otherwise])
            elif isinstance(action, act.HoldTimer):
                self._hold(session, action)
            elif isinstance(action, act.StopTimer):
                self._arm_stop_timer(action.delay_s)
            elif isinstance(action, act.Detach):
                self._disarm_stop_timer()
                await self.channel_layer.group_discard(
                    group_name(session.session), self.channel_name
                )

    def _hold(self, session: LiveSession, timer: act.HoldTimer) -> None:
        def release() -> None:
            asyncio.ensure_future(self._run(session.legacy_timeout(timer.segment)))

        asyncio.get_running_loop().call_later(timer.delay_s, release)

    def _arm_stop_timer(self, delay_s: float) -> None:
        self._disarm_stop_timer()
        self.stop_timers += 1
        self.stop_timer = asyncio.ensure_future(self._stop_timer(delay_s, self.stop_timers))

    def _disarm_stop_timer(self) -> None:
        if self.stop_timer is not None:
            self.stop_timer.cancel()
            self.stop_timer = None

    async def _stop_timer(self, delay_s: float, number: int) -> None:
        await asyncio.sleep(delay_s)
        # Through the channel layer, so that it is handled in turn with the worker events
        # (never between the actions of one of them).
        await self.channel_layer.send(
            self.channel_name, {"type": "live.stop_wait", "timer": number}
        )

    async def live_stop_wait(self, message: dict[str, Any]) -> None:
        """LIVE_STOP_WAIT_S passed since the stop: ``stopped`` without what is missing."""
        if message.get("timer") == self.stop_timers:
            await self._finish_stop()

    async def _finish_stop(self) -> None:
        if self.session is not None:
            await self._run(self.session.stop_timeout())

    async def _end_stream(self, *, announce: bool) -> None:
        if self.endpointer is None or self.session is None:
            return
        # Redis may have lost the session since the last status tick (those come only with
        # audio): recover before the end is written, or that speech would be lost for good.
        await recovery.hold(self)
        endpointer, self.endpointer = self.endpointer, None
        session = self.session.session
        try:
            holder = await asyncio.to_thread(store.session_owner, session)
            if holder not in (None, self.channel_name):
                # Taken over without us (this connection was silent too long to answer):
                # the holder goes on from the saved state; writing ours would set it back.
                log.warning("live session %s ended here after %s took it", session, holder)
                return
            await self._on_audio_events(await asyncio.to_thread(endpointer.flush))
            position = self.session.offset + endpointer.position_s
            # Closed before finish() lets the session go: a connection taking it over opens
            # the file next. (The finally only covers the paths that never get here.)
            await self._close_recording()
            state = StreamState(position, self.session.next_utterance)
            await asyncio.to_thread(dispatch.finish, session, self.channel_name, state)
        finally:
            await self._close_recording()
        if announce:
            # ``stopped`` now, or once the stream's last finals and keywords are in.
            wait_s = settings.LIVE_STOP_WAIT_S
            await self._run(self.session.stop(round(position, 3), wait_s))

    async def _close_recording(self) -> None:
        recorder = self.recorder
        if recorder is None:
            return
        await asyncio.to_thread(recorder.close)
        if recorder.unpublished is not None:
            # Into object storage before the session is let go (``dispatch.finish``): a
            # connection taking it over, here or on another host, starts from the object.
            name = recorder.unpublished[0]
            try:
                keep = await database_sync_to_async(records.recording_kept)(recorder.session, name)
            except DatabaseError:  # the database is down: rather kept than lost
                keep = True
            await asyncio.to_thread(recorder.publish, keep)

    async def _status(self) -> None:
        self.last_status = time.monotonic()
        if self.limit_key:
            await asyncio.to_thread(store.refresh, self.limit_key, self.channel_name)
        if self.session is not None:
            if self.endpointer is not None:  # streaming: the hold on the session lives on
                await recovery.hold(self)
            buffered = self.endpointer.buffered_s if self.endpointer is not None else 0.0
            await self._emit(self.session.status_event(buffered, settings.LIVE_BACKLOG_WARN_S))

    # --- outgoing -----------------------------------------------------------------------
    async def _emit(self, event: dict[str, Any]) -> None:
        if self.mode == "legacy":
            if event["type"] == "error":
                await self.send_json(event)
            return
        if self.session is not None:
            event = await asyncio.to_thread(store.record, self.session.session, event)
        await self.send_json(event)

    async def send_json(self, content: dict[str, Any]) -> None:
        self.last_seq = max(self.last_seq, content.get("seq") or 0)
        await self.send(text_data=json.dumps(content, ensure_ascii=False))

    async def transcript_event(self, message: dict[str, Any]) -> None:
        """A worker's event for the session (through the channel layer group)."""
        if self.session is None:
            return
        event = message["event"]
        session = self.session
        timed = session.timed_finals
        await self._run(session.on_worker_event(event))
        if session.timed_finals > timed and session.last_latency is not None:
            metrics.LIVE_LATENCY.observe(session.last_latency)
        if event.get("type") == "final" and not self.session.stopped:
            await self._status()
