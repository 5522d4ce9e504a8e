"""Uploads are transcribed by a real worker on the real broker into PostgreSQL."""

from __future__ import annotations

import io
import time

import pysrt
import pytest
import webvtt

from bench.cer import cer
from tests.audio_files import long_file_with_gaps, write_wav
from transcription.models import Transcript
from transcription.web.subtitles import Cue, cue_violations

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def upload(client, path, **data):
    with open(path, "rb") as handle:
        return client.post("/api/transcripts/", {"file": handle, **data})


def wait_done(client, url, timeout=180, until=("done", "failed")):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(url).json()
        if body["status"] in until:
            return body
        time.sleep(0.3)
    raise AssertionError(f"still {body['status']} after {timeout} s: {body}")


def test_upload_is_transcribed_with_keywords(owner_client, stt_worker, keyword_worker, eval_clip):
    path, entry = eval_clip("ko_zeroth_104_003_0253")
    response = upload(owner_client, path)
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued"
    assert response["Location"] == body["url"]
    done = wait_done(owner_client, body["url"])
    assert done["status"] == "done", done
    assert done["progress"] == 1.0
    assert abs(done["duration"] - entry["duration_s"]) < 0.1
    text = " ".join(s["text"] for s in done["segments"])
    assert cer(entry["reference"], text, numerals=True) < 0.25, text
    # The keyword worker follows on its own queue.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not done["keywords"]:
        time.sleep(0.5)
        done = owner_client.get(body["url"]).json()
    words = {k["word"] for k in done["keywords"]}
    assert {"백화점", "영화관"} & words, words
    assert all(k["backend"] == "embedded" for k in done["keywords"])


def test_not_audio_is_refused_at_upload(owner_client):
    response = owner_client.post(
        "/api/transcripts/", {"file": io.BytesIO(b"%PDF-1.4 definitely not audio" * 50)}
    )
    assert response.status_code == 400
    assert "error" in response.json()
    assert not Transcript.objects.exists()


def test_missing_file_and_bad_language_are_400(owner_client, eval_clip):
    assert owner_client.post("/api/transcripts/", {}).status_code == 400
    path, _ = eval_clip("ko_picovoice_leopard_test_ko")
    response = upload(owner_client, path, language="klingon")
    assert response.status_code == 400
    assert "klingon" in response.json()["error"]


def test_oversized_upload_is_413(owner_client, settings, tmp_path):
    settings.UPLOAD_MAX_MB = 1
    big = write_wav(tmp_path / "big.wav", __import__("numpy").zeros(16000 * 40, dtype="float32"))
    response = upload(owner_client, big)
    assert response.status_code == 413
    assert "1 MB" in response.json()["error"]
    assert not Transcript.objects.exists()


def test_empty_and_silent_files_end_done_without_segments(
    owner_client, stt_worker, tmp_path, eval_clip
):
    import numpy as np

    empty = write_wav(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32))
    silent = write_wav(tmp_path / "silent.wav", np.zeros(16000 * 5, dtype=np.float32))
    noise, _ = eval_clip("nonspeech_fireplace_cc0_30s")
    for path in (empty, silent, noise):
        body = upload(owner_client, path).json()
        done = wait_done(owner_client, body["url"])
        assert done["status"] == "done", (path, done)
        assert done["segments"] == [], (path, done["segments"])


def test_timestamps_follow_the_speech_on_a_long_file(owner_client, stt_worker, tmp_path, eval_clip):
    clips = [
        eval_clip(i)[0]
        for i in ("ko_zeroth_104_003_0019", "ko_zeroth_104_003_0294", "ko_zeroth_104_003_0193")
    ]
    path, spans = long_file_with_gaps(tmp_path / "long.wav", clips, gap_s=5.0)
    body = upload(owner_client, path).json()
    done = wait_done(owner_client, body["url"])
    assert done["status"] == "done"
    segments = done["segments"]
    assert len(segments) >= len(spans)
    for segment in segments:
        inside = [
            s for s in spans if s[0] - 0.5 <= segment["start"] and segment["end"] <= s[1] + 0.5
        ]
        assert inside, f"segment {segment} spans a silence gap or lies outside speech {spans}"
    # Every stretch of speech is covered, starting and ending within 0.5 s.
    for start, end in spans:
        covering = [s for s in segments if start - 0.5 <= s["start"] and s["end"] <= end + 0.5]
        assert covering, (start, end)
        assert abs(covering[0]["start"] - start) <= 0.5
        assert abs(covering[-1]["end"] - end) <= 0.5
    indexes = [s["index"] for s in segments]
    assert indexes == list(range(len(segments)))
    # Word timings: every word starts inside its segment, in order across the transcript.
    starts = []
    for segment in segments:
        assert segment["words"], segment
        assert "".join(w["word"] for w in segment["words"]).strip() == segment["text"]
        for word in segment["words"]:
            assert segment["start"] <= word["start"] <= word["end"] <= segment["end"], segment
            starts.append(word["start"])
    assert starts == sorted(starts)
    # Every subtitle cue of the file keeps the cue rules and lies inside one stretch of speech.
    subs = pysrt.from_string(owner_client.get(done["exports"]["srt"]).content.decode())
    cues = [Cue(s.start.ordinal / 1000, s.end.ordinal / 1000, s.text.split("\n")) for s in subs]
    assert len(cues) >= len(segments)
    assert cue_violations(cues) == []
    for cue in cues:
        assert any(a - 1.0 <= cue.start and cue.end <= b + 1.0 for a, b in spans), cue


def test_exports_parse_with_real_subtitle_parsers(owner_client, stt_worker, eval_clip, tmp_path):
    path, _ = eval_clip("ko_zeroth_104_003_0294")
    body = upload(owner_client, path).json()
    done = wait_done(owner_client, body["url"])
    segments = done["segments"]
    assert segments
    srt = owner_client.get(done["exports"]["srt"])
    assert srt.status_code == 200
    assert "attachment" in srt["Content-Disposition"]
    subs = pysrt.from_string(srt.content.decode())
    # Subtitle cues (transcription/web/subtitles.py): the segments' text, cut by the cue rules,
    # inside the time of the segments and their words (a last short cue may be held for up to
    # a second).
    said = " ".join(s["text"] for s in segments)
    assert " ".join(s.text.replace("\n", " ") for s in subs) == said
    cues = [Cue(s.start.ordinal / 1000, s.end.ordinal / 1000, s.text.split("\n")) for s in subs]
    assert cue_violations(cues) == []
    first_heard = min([segments[0]["start"]] + [w["start"] for w in segments[0]["words"] or []])
    assert cues[0].start >= first_heard - 0.002
    assert cues[-1].end <= segments[-1]["end"] + 1.0
    vtt_path = tmp_path / "t.vtt"
    vtt_path.write_bytes(owner_client.get(done["exports"]["vtt"]).content)
    captions = webvtt.read(str(vtt_path))
    assert [c.text.split("\n") for c in captions] == [cue.lines for cue in cues]
    h, m, sec = captions[-1].end.split(":")
    assert abs(int(h) * 3600 + int(m) * 60 + float(sec) - cues[-1].end) < 0.002
    txt = owner_client.get(done["exports"]["txt"]).content.decode()
    assert segments[0]["text"] in txt
    data = owner_client.get(done["exports"]["json"]).json()
    assert [s["text"] for s in data["segments"]] == [s["text"] for s in segments]
    assert owner_client.get(done["url"] + "export?format=docx").status_code == 400
