from __future__ import annotations

import html
import json
import uuid
from collections import namedtuple
from dataclasses import dataclass

import pysrt
import pytest
import webvtt

from transcription.web.exports import FORMATS, format_timestamp, render

TRANSCRIPT_ID = uuid.UUID("5b0f6c1e-2f5a-4c1b-9a57-0c5f1d2e3a4b")
META = {"id": TRANSCRIPT_ID, "title": "주간 회의", "language": "ko", "duration": 3725.5}


@dataclass
class Seg:
    start: float
    end: float
    text: str


SEGMENTS = [
    Seg(0.0, 2.5, " 한잔의 커피가 소비자에게 전해지기 위해서는"),
    Seg(2.5, 6.0, "And so my fellow Americans"),
    # Past an hour, to check that hours are carried, not wrapped.
    Seg(3661.001, 3725.5, "한 시간이 지났습니다"),
]


def _seconds(ts) -> float:
    return ts.hours * 3600 + ts.minutes * 60 + ts.seconds + ts.milliseconds / 1000


def _vtt_seconds(stamp: str) -> float:
    hours, minutes, seconds = stamp.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


@pytest.mark.parametrize(
    ("seconds", "srt", "vtt"),
    [
        (0, "00:00:00,000", "00:00:00.000"),
        (62.345, "00:01:02,345", "00:01:02.345"),
        (59.9996, "00:01:00,000", "00:01:00.000"),  # rounds up into the next minute, not ",1000"
        (3661.001, "01:01:01,001", "01:01:01.001"),
        (100 * 3600 + 1.5, "100:00:01,500", "100:00:01.500"),
        (-0.2, "00:00:00,000", "00:00:00.000"),
    ],
)
def test_format_timestamp(seconds, srt, vtt):
    assert format_timestamp(seconds) == srt
    assert format_timestamp(seconds, ".") == vtt


def test_format_timestamp_rejects_nan():
    with pytest.raises(ValueError, match="finite"):
        format_timestamp(float("nan"))


def test_srt_round_trips_through_pysrt():
    content, content_type, ext = render("srt", META, SEGMENTS)
    assert (content_type, ext) == ("application/x-subrip; charset=utf-8", "srt")
    subs = pysrt.from_string(content)
    assert [s.index for s in subs] == [1, 2, 3]
    assert [s.text for s in subs] == [
        "한잔의 커피가 소비자에게 전해지기 위해서는",
        "And so my fellow Americans",
        "한 시간이 지났습니다",
    ]
    for sub, seg in zip(subs, SEGMENTS, strict=True):
        assert _seconds(sub.start) == pytest.approx(seg.start, abs=0.0005)
        assert _seconds(sub.end) == pytest.approx(seg.end, abs=0.0005)
    assert "01:01:01,001 --> 01:02:05,500" in content


def test_vtt_round_trips_through_webvtt(tmp_path):
    content, content_type, ext = render("vtt", META, SEGMENTS)
    assert (content_type, ext) == ("text/vtt; charset=utf-8", "vtt")
    assert content.startswith("WEBVTT - 주간 회의\n\n")
    path = tmp_path / f"t.{ext}"
    path.write_text(content, encoding="utf-8")
    captions = list(webvtt.read(str(path)))
    assert [c.text for c in captions] == [s.text.strip() for s in SEGMENTS]
    for caption, seg in zip(captions, SEGMENTS, strict=True):
        assert _vtt_seconds(caption.start) == pytest.approx(seg.start, abs=0.0005)
        assert _vtt_seconds(caption.end) == pytest.approx(seg.end, abs=0.0005)


def test_hostile_text_keeps_files_parseable():
    segments = [
        Seg(1.0, 2.0, "first line\n\n\n2\n00:00:09,000 --> 00:00:10,000\nfake cue"),
        Seg(2.0, 3.0, "a --> b & <c>"),
        Seg(3.0, 4.0, "   \n  "),  # nothing to show: skipped rather than an empty cue
        Seg(5.0, 4.0, "ends before it starts"),
    ]
    subs = pysrt.from_string(render("srt", META, segments)[0])
    assert len(subs) == 3
    assert subs[0].text == "first line\n2\n00:00:09,000 → 00:00:10,000\nfake cue"
    assert subs[1].text == "a → b & <c>"
    assert subs[2].start == subs[2].end  # clamped, not negative

    captions = webvtt.from_string(render("vtt", {"title": "x --> y\nz"}, segments)[0])
    assert len(captions) == 3
    # WebVTT cue text is markup, so & and < are escaped in the file.
    assert html.unescape(captions[1].text) == "a → b & <c>"


def test_txt_one_line_per_segment():
    content, content_type, ext = render("txt", META, SEGMENTS)
    assert (content_type, ext) == ("text/plain; charset=utf-8", "txt")
    assert content.splitlines() == [
        "한잔의 커피가 소비자에게 전해지기 위해서는",
        "And so my fellow Americans",
        "한 시간이 지났습니다",
    ]
    stamped = render("txt", META, [Seg(3661.001, 3725.5, "두 줄\n텍스트")], timestamps=True)[0]
    assert stamped == "[01:01:01.001 - 01:02:05.500] 두 줄 텍스트\n"


def test_json_has_metadata_segments_and_keywords():
    keyword = namedtuple("Keyword", "word category importance")
    content, content_type, ext = render(
        "json", META, SEGMENTS, keywords=[keyword("커피", "제품", 0.9), "소비자"]
    )
    assert (content_type, ext) == ("application/json", "json")
    assert "한잔의 커피" in content  # UTF-8 text, not \uXXXX escapes
    document = json.loads(content)
    assert document["id"] == str(TRANSCRIPT_ID)
    assert (document["title"], document["language"], document["duration"]) == (
        "주간 회의",
        "ko",
        3725.5,
    )
    assert [s["text"] for s in document["segments"]] == [s.text.strip() for s in SEGMENTS]
    assert document["segments"][2] == {
        "index": 2,
        "start": 3661.001,
        "end": 3725.5,
        "text": "한 시간이 지났습니다",
    }
    assert document["keywords"] == [
        {"word": "커피", "category": "제품", "importance": 0.9},
        {"word": "소비자"},
    ]
    assert "keywords" not in json.loads(render("json", META, SEGMENTS)[0])


def test_json_from_an_object_and_mapping_segments_with_words():
    class Transcript:
        id = TRANSCRIPT_ID
        title = "t"
        language = "en"
        duration = None
        secret = "not exported"

    segment = {
        "start": 0.0,
        "end": 1.0,
        "text": "hi",
        "words": [{"word": "hi", "start": 0.1, "end": 0.4, "probability": 0.98}],
    }
    document = json.loads(render("json", Transcript(), [segment])[0])
    assert document["id"] == str(TRANSCRIPT_ID)
    assert "secret" not in document
    assert document["segments"][0]["words"][0]["probability"] == 0.98


def test_empty_transcript_renders_valid_files():
    assert pysrt.from_string(render("srt", META, [])[0]) == []
    assert list(webvtt.from_string(render("vtt", META, [])[0])) == []
    assert render("txt", META, [])[0] == ""
    assert json.loads(render("json", META, [])[0])["segments"] == []


def test_format_name_is_case_insensitive_and_unknown_one_is_named():
    assert render("SRT", META, SEGMENTS)[2] == "srt"
    with pytest.raises(ValueError) as excinfo:
        render("docx", META, SEGMENTS)
    message = str(excinfo.value)
    assert "docx" in message
    assert all(name in message for name in FORMATS)
