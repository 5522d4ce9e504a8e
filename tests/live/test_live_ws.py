"""/ws with a real stt worker and keyword worker: both protocols, resume, takeover,
early finals, partials, disconnects (the worker-free cases are in test_live_ws_input.py)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings

from bench.cer import cer
from tests.celery_workers import log_text, running_worker
from tests.live.ws import (
    RATE,
    chunks,
    clip,
    connect,
    pcm16,
    receive_until,
    recording_of,
    resume,
    start,
    stream,
)
from transcription.live.store import StreamState
from transcription.models import Segment, Transcript
from transcription.speech.audio import decode_audio
from transcription.speech.endpointing import Endpointer, EndpointerConfig, Resumed, Utterance
from workers.priority import autogroup_niceness

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("signed_in", "media", "no_leftover_sessions"),
]


@pytest.fixture(scope="module")
def workers(django_db_blocker, django_db_setup):
    with (
        django_db_blocker.unblock(),
        running_worker("stt") as stt,
        running_worker("stt_partial") as partial,
        running_worker("keywords", extra_env={"KEYWORD_BACKEND": "embedded"}),
    ):
        yield {"stt": stt, "stt_partial": partial}


@pytest.fixture(autouse=True)
def workers_settle(transactional_db):
    """After each test, let the workers finish what it started (finish_live, keywords)
    before the database is flushed: a TRUNCATE racing a worker's UPDATE can deadlock on a
    busy machine."""
    yield
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    live = Transcript.objects.filter(source=Transcript.Source.LIVE)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if not (
            client.llen("stt")
            or client.llen("keywords")
            or live.filter(status=Transcript.Status.RUNNING).exists()
        ):
            break
        time.sleep(0.2)
    time.sleep(0.5)  # the task a worker had already taken


async def test_original_client_protocol(workers, eval_clip):
    audio, entry = clip(eval_clip, "ko_zeroth_104_003_0294")
    communicator = await connect()
    await communicator.send_json_to({"type": "config", "language": "ko"})
    for piece in chunks(audio, 0.5):
        await communicator.send_json_to(
            {"type": "audio", "data": base64.b64encode(piece.astype("<f4").tobytes()).decode()}
        )
    events = await receive_until(communicator, lambda e: e["type"] == "transcription", timeout=60)
    message = events[-1]
    assert set(message) >= {
        "type",
        "text",
        "keywords",
        "language",
        "confidence",
        "device",
        "timestamp",
    }
    assert cer(entry["reference"], message["text"], numerals=True) < 0.3, message["text"]
    assert message["language"] == "ko" and message["device"] == "cpu"
    assert any(k["word"] == "커피" for k in message["keywords"]), message["keywords"]
    for keyword in message["keywords"]:
        assert set(keyword) == {"word", "category", "importance"}
    await communicator.disconnect()


async def test_native_protocol_events(workers, eval_clip):
    audio, entry = clip(eval_clip, "ko_zeroth_104_003_0253")
    communicator = await connect()
    ready = await start(communicator)
    await stream(communicator, audio)
    events = await receive_until(
        communicator, lambda e: e["type"] == "final" and e["text"], timeout=60
    )
    types = [e["type"] for e in events]
    assert "speech_started" in types
    final = events[-1]
    assert cer(entry["reference"], final["text"], numerals=True) < 0.3
    assert final["segment"] and final["end"] > final["start"]
    events += await receive_until(communicator, lambda e: e["type"] == "keywords", timeout=30)
    keywords = events[-1]
    assert keywords["segment"] == final["segment"]
    assert {"백화점", "영화관"} & {k["word"] for k in keywords["items"]}
    await communicator.send_json_to({"type": "stop"})
    events += await receive_until(communicator, lambda e: e["type"] == "stopped", timeout=30)
    seqs = [e["seq"] for e in events if "seq" in e]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert any(e["type"] == "status" and "backlog_s" in e for e in events)
    await communicator.disconnect()
    segment = await asyncio.to_thread(lambda: Segment.objects.get(pk=final["segment"]))
    assert str(segment.transcript_id) == ready["session"]
    await asyncio.to_thread(_wait_status, ready["session"], "done")


def _wait_status(session, status, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Transcript.objects.get(pk=session).status == status:
            return
        time.sleep(0.2)
    raise AssertionError(f"transcript {session} never became {status}")


async def test_resume_after_a_dropped_connection(workers, eval_clip):
    first, _ = clip(eval_clip, "ko_zeroth_104_003_0294")
    second, entry2 = clip(eval_clip, "ko_picovoice_leopard_test_ko")
    communicator = await connect()
    ready = await start(communicator)
    session = ready["session"]
    await stream(communicator, first)
    events = await receive_until(
        communicator, lambda e: e["type"] == "final" and e["text"], timeout=60
    )
    first_final = events[-1]
    await communicator.disconnect()  # the network drops

    communicator = await connect()
    replayed = await resume(communicator, session, ready["seq"], timeout=10)
    assert replayed[-1]["resumed"] is True and replayed[-1]["session"] == session
    # Everything after last_seq is replayed, including the first final.
    assert any(e["type"] == "final" and e["segment"] == first_final["segment"] for e in replayed)
    assert all(e["seq"] > ready["seq"] for e in replayed)
    await stream(communicator, second)
    events = await receive_until(
        communicator, lambda e: e["type"] == "final" and e["text"], timeout=60
    )
    second_final = events[-1]
    assert second_final["utterance"] > first_final["utterance"]
    assert second_final["start"] >= first_final["end"]  # one timeline across both connections
    assert second_final["seq"] > max(e["seq"] for e in replayed)
    await communicator.disconnect()
    texts = await asyncio.to_thread(
        lambda: list(
            Segment.objects.filter(transcript_id=session)
            .order_by("index")
            .values_list("text", flat=True)
        )
    )
    assert len(texts) == 2
    assert cer(entry2["reference"], texts[1]) < 0.5
    # The recording holds both connections' audio, each where the timeline puts it.
    recorded = await asyncio.to_thread(recording_of, session)
    assert recorded.size == first.size + second.size
    assert np.abs(recorded[: first.size] - first).max() < 1e-3
    assert np.abs(recorded[first.size :] - second).max() < 1e-3
    assert second_final["start"] >= first.size / RATE - 0.5


async def until_closed(communicator, timeout=15.0) -> tuple[list[dict], int | None]:
    """The events a socket gets before the server closes it, and the close code."""
    events = []
    while True:
        output = await communicator.receive_output(timeout=timeout)
        if output["type"] == "websocket.close":
            return events, output.get("code")
        events.append(json.loads(output["text"]))


def segment_rows(session: str) -> list[tuple[int, float, float]]:
    return list(
        Segment.objects.filter(transcript_id=session)
        .order_by("index")
        .values_list("index", "start", "end")
    )


async def test_a_second_connection_takes_the_session_over(workers, eval_clip):
    first, _ = clip(eval_clip, "ko_zeroth_104_003_0294")
    second, entry2 = clip(eval_clip, "ko_picovoice_leopard_test_ko")
    old = await connect()
    ready = await start(old)
    session = ready["session"]
    await stream(old, first)
    await receive_until(old, lambda e: e["type"] == "final" and e["text"], timeout=60)
    # The old socket is still open (a reconnect before the server noticed the drop, or a
    # second tab): the resume asks it to hand over, and it closes without reconnecting.
    new = await connect()
    events = await resume(new, session, ready["seq"])
    assert any(e["type"] == "final" and e["text"] for e in events)
    told, code = await until_closed(old)
    assert code == 4409 and told[-1]["code"] == "taken_over", (told, code)
    await stream(new, second)
    events = await receive_until(new, lambda e: e["type"] == "final" and e["text"], timeout=60)
    assert events[-1]["start"] >= first.size / RATE - 0.5
    assert cer(entry2["reference"], events[-1]["text"]) < 0.5
    await new.send_json_to({"type": "stop"})
    await receive_until(new, lambda e: e["type"] == "stopped", timeout=30)
    await new.disconnect()
    await asyncio.to_thread(_wait_status, session, "done")
    rows = await asyncio.to_thread(segment_rows, session)
    assert [index for index, _s, _e in rows] == [0, 1], rows
    recorded = await asyncio.to_thread(recording_of, session)
    assert recorded.size == first.size + second.size
    assert np.abs(recorded[first.size :] - second).max() < 1e-3


async def test_a_stale_saved_state_neither_cuts_the_recording_nor_reuses_the_timeline(
    workers, eval_clip
):
    first, _ = clip(eval_clip, "ko_zeroth_104_003_0294")
    second, _ = clip(eval_clip, "ko_picovoice_leopard_test_ko")
    communicator = await connect()
    ready = await start(communicator)
    session = ready["session"]
    await stream(communicator, first)
    await receive_until(communicator, lambda e: e["type"] == "final" and e["text"], timeout=60)
    await communicator.send_json_to({"type": "stop"})
    events = await receive_until(communicator, lambda e: e["type"] == "stopped", timeout=30)
    # What a web process that died before saving would leave: a state from long before.
    from transcription.live import store

    await asyncio.to_thread(store.save_state, session, StreamState(1.0, 0))
    await resume(communicator, session, events[-1]["seq"])
    await stream(communicator, second)
    events = await receive_until(
        communicator, lambda e: e["type"] == "final" and e["text"], timeout=60
    )
    assert events[-1]["start"] >= first.size / RATE - 0.5
    await communicator.send_json_to({"type": "stop"})
    await receive_until(communicator, lambda e: e["type"] == "stopped", timeout=30)
    rows = await asyncio.to_thread(segment_rows, session)
    assert [index for index, _s, _e in rows] == [0, 1], rows
    recorded = await asyncio.to_thread(recording_of, session)
    assert recorded.size == first.size + second.size
    assert np.abs(recorded[: first.size] - first).max() < 1e-3

    # A new session on the same socket starts its own timeline at zero.
    fresh = await start(communicator)
    assert fresh["session"] != session
    await stream(communicator, second)
    events = await receive_until(
        communicator, lambda e: e["type"] == "final" and e["text"], timeout=60
    )
    assert events[-1]["start"] < 2.0 and events[-1]["utterance"] == 0
    await communicator.send_json_to({"type": "stop"})
    await receive_until(communicator, lambda e: e["type"] == "stopped", timeout=30)
    await communicator.disconnect()
    assert (await asyncio.to_thread(recording_of, fresh["session"])).size == second.size


async def test_early_finals_stand_only_when_the_pause_was_the_end(workers, eval_clip):
    """A pause longer than the speech pad starts the final early; speech resuming before
    the silence rule voids it, and only the real end gives a final: one, with all the text."""
    speech, entry = clip(eval_clip, "ko_zeroth_104_003_0253", trailing_silence=0)
    # Open a short gap at the quietest moment in the middle of the sentence ("...있고 |
    # 테마파크..."): the VAD hears more silence than the digital gap, so take the longest
    # gap that the endpointer announces as a pause but not as an end.
    frames = np.sqrt(np.mean(speech[: len(speech) // 320 * 320].reshape(-1, 320) ** 2, axis=1))
    third = len(frames) // 3
    split = (third + int(np.argmin(frames[third : 2 * third]))) * 320
    tail = np.zeros(int(1.5 * RATE), np.float32)
    for gap_s in (0.3, 0.25, 0.2, 0.15, 0.1, 0.05):
        gap = np.zeros(int(gap_s * RATE), np.float32)
        audio = np.concatenate([speech[:split], gap, speech[split:], tail])
        endpointer = Endpointer(
            EndpointerConfig.from_settings(pause_events=True, pause_ms=settings.LIVE_PAUSE_MS)
        )
        cut = endpointer.feed(audio) + endpointer.flush()
        kinds = [type(e) for e in cut]
        if kinds.count(Utterance) == 1 and Resumed in kinds:
            break
    else:
        raise AssertionError("no gap gives a pause inside one utterance")
    communicator = await connect()
    ready = await start(communicator)
    await stream(communicator, audio)
    events = await receive_until(communicator, lambda e: e["type"] == "final", timeout=90)
    final = events[-1]
    assert final["early"] is True, final
    assert cer(entry["reference"], final["text"], numerals=True) < 0.3, final["text"]
    await communicator.send_json_to({"type": "stop"})
    events += await receive_until(communicator, lambda e: e["type"] == "stopped", timeout=30)
    await communicator.disconnect()
    assert [e["type"] for e in events].count("final") == 1

    def decisions():
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL)
        keys = [
            k
            for k in client.scan_iter(match=f"live:{ready['session']}:early:*")
            if b":wake" not in k
        ]
        return sorted(client.get(k).decode() for k in keys)

    # The pause between the sentences (and any inside them) was voided; the one at the end
    # became the final.
    found = await asyncio.to_thread(decisions)
    assert found.count("final") == 1 and found.count("void") >= 1, found
    segments = await asyncio.to_thread(
        lambda: list(Segment.objects.filter(transcript_id=ready["session"]))
    )
    assert [s.text for s in segments] == [final["text"]]


async def test_partials_while_talking_come_from_the_partial_worker(workers, eval_clip):
    """Streamed at the pace of speech, an 11 s sentence gets interim text about once a second
    from the stt_partial worker; the stt worker does only the final."""
    audio, entry = clip(eval_clip, "ko_zeroth_104_003_0019")
    communicator = await connect()
    await start(communicator)
    step = 0.25
    for piece in chunks(audio, step):
        await communicator.send_to(bytes_data=pcm16(piece))
        await asyncio.sleep(step)
    events = await receive_until(
        communicator, lambda e: e["type"] == "final" and e["text"], timeout=60
    )
    final = events[-1]
    partials = [e for e in events if e["type"] == "partial"]
    assert len(partials) >= 2, [e["type"] for e in events]
    assert all(p["utterance"] == final["utterance"] for p in partials), partials
    # Interim text grows towards the final: the last partial is a good part of the sentence.
    assert len(partials[-1]["text"]) >= 10, partials
    assert cer(entry["reference"], final["text"], numerals=True) < 0.3, final["text"]
    await communicator.send_json_to({"type": "stop"})
    await receive_until(communicator, lambda e: e["type"] == "stopped", timeout=30)
    await communicator.disconnect()
    partial_log = log_text(workers["stt_partial"].log, limit=None)
    stt_log = log_text(workers["stt"].log, limit=None)
    assert "Task transcription.tasks.transcribe_partial[" in partial_log, partial_log[-3000:]
    assert "Task transcription.tasks.transcribe_partial[" not in stt_log, stt_log[-3000:]
    assert "Task transcription.tasks.transcribe_utterance[" in stt_log, stt_log[-3000:]
    # The partial worker runs at the lowest priority, its session's scheduling group included.
    group = Path(f"/proc/{workers['stt_partial'].pid}/autogroup")
    if group.exists():
        assert autogroup_niceness(group) == 19


async def test_disconnect_mid_utterance_still_stores_it(workers, eval_clip):
    audio, _ = clip(eval_clip, "ko_zeroth_104_003_0019", trailing_silence=0)
    communicator = await connect()
    ready = await start(communicator)
    await stream(communicator, audio[: int(6.5 * RATE)])  # stop talking mid-sentence... and close
    await communicator.disconnect()

    def stored():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            segments = list(Segment.objects.filter(transcript_id=ready["session"]))
            if segments:
                return segments
            time.sleep(0.3)
        return []

    segments = await asyncio.to_thread(stored)
    assert segments and "장관" in "".join(s.text for s in segments)
    recorded = await asyncio.to_thread(recording_of, ready["session"])
    assert recorded.size == int(6.5 * RATE)


async def test_no_recording_is_kept_when_turned_off(workers, settings, media):
    settings.LIVE_KEEP_AUDIO = False
    communicator = await connect()
    ready = await start(communicator)
    await stream(communicator, np.zeros(RATE, np.float32))
    await communicator.send_json_to({"type": "stop"})
    await receive_until(communicator, lambda e: e["type"] == "stopped", timeout=30)
    await communicator.disconnect()
    transcript = await asyncio.to_thread(Transcript.objects.get, pk=ready["session"])
    assert not transcript.audio
    assert not list(media.rglob("*.wav"))


async def test_no_speech_produces_nothing(workers, eval_clip):
    communicator = await connect()
    ready = await start(communicator)
    for clip_id in (
        "nonspeech_fireplace_cc0_30s",
        "nonspeech_goldberg_piano_cc0",
        "nonspeech_picovoice_leopard_empty",
    ):
        audio = decode_audio(eval_clip(clip_id)[0])
        await stream(communicator, audio)
    await communicator.send_json_to({"type": "stop"})
    events = await receive_until(communicator, lambda e: e["type"] == "stopped", timeout=30)
    # Let any utterance the endpointer did cut come back from the worker before looking.
    await asyncio.sleep(8)
    while not await communicator.receive_nothing(timeout=0.5, interval=0.05):
        events.append(json.loads(await communicator.receive_from()))
    assert not [e for e in events if e["type"] == "final" and e["text"]], events
    assert not await asyncio.to_thread(
        lambda: Segment.objects.filter(transcript_id=ready["session"]).exists()
    )
    await communicator.disconnect()
