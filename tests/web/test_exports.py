from __future__ import annotations

import html
import json
import uuid
from collections import namedtuple
from dataclasses import dataclass

import pysrt
import pytest
import webvtt
from django.test import Client

from tests.factories import make_transcript
from transcription.models import Segment
from transcription.web.exports import FORMATS, format_timestamp, render, subtitle_limits
from transcription.web.subtitles import Cue, cue_violations

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
    Seg(3661.001, 3665.5, "한 시간이 지났습니다"),
]
# Each segment is one subtitle cue; the first, 23 characters of Korean, takes two lines.
CUE_TEXTS = [
    "한잔의 커피가 소비자에게\n전해지기 위해서는",
    "And so my fellow Americans",
    "한 시간이 지났습니다",
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
    assert [s.text for s in subs] == CUE_TEXTS
    for sub, seg in zip(subs, SEGMENTS, strict=True):
        assert _seconds(sub.start) == pytest.approx(seg.start, abs=0.0005)
        assert _seconds(sub.end) == pytest.approx(seg.end, abs=0.0005)
    assert "01:01:01,001 --> 01:01:05,500" in content


def test_vtt_round_trips_through_webvtt(tmp_path):
    content, content_type, ext = render("vtt", META, SEGMENTS)
    assert (content_type, ext) == ("text/vtt; charset=utf-8", "vtt")
    assert content.startswith("WEBVTT - 주간 회의\n\n")
    path = tmp_path / f"t.{ext}"
    path.write_text(content, encoding="utf-8")
    captions = list(webvtt.read(str(path)))
    assert [c.text for c in captions] == CUE_TEXTS
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
    content = render("srt", META, segments)[0]
    assert "-->" not in content.replace(" --> ", "")  # only on timing lines
    subs = pysrt.from_string(content)
    assert len(subs) == 3
    # Line breaks in the text do not survive: cue lines are laid out afresh.
    assert subs[0].text == "first line 2 00:00:09,000\n→ 00:00:10,000 fake cue"
    assert subs[1].text == "a → b & <c>"
    # Clamped to a zero-length segment at 5 s, then shown for the minimum second.
    assert (subs[2].start.ordinal, subs[2].end.ordinal) == (5000, 6000)

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
        "end": 3665.5,
        "text": "한 시간이 지났습니다",
        "speaker": None,
        "edited": False,
        "original_text": None,
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


# --- subtitle cues: one long sentence becomes several cues -----------------------------------

KO_SENTENCE = (
    "오늘 회의에서는 다음 분기 신제품 출시 일정과 마케팅 전략에 대해 논의하고, 각 부서의 "
    "예산 배분 문제를 함께 검토한 뒤 최종 결정을 내리도록 하겠습니다."
)


def _words(text: str, start: float, per_char: float = 0.15) -> list[dict]:
    """Whisper-style words at about seven syllables a second."""
    words, t = [], start
    for token in text.split():
        end = t + per_char * len(token)
        words.append({"word": " " + token, "start": round(t, 3), "end": round(end, 3)})
        t = end + 0.08
    return words


def _parsed_cues(srt: str) -> list[Cue]:
    return [
        Cue(s.start.ordinal / 1000, s.end.ordinal / 1000, s.text.split("\n"))
        for s in pysrt.from_string(srt)
    ]


def test_a_long_sentence_is_exported_as_subtitle_cues(tmp_path):
    words = _words(KO_SENTENCE, 12.0)
    sentence = {"start": 12.0, "end": words[-1]["end"], "text": KO_SENTENCE, "words": words}
    srt = render("srt", META, [sentence])[0]
    cues = _parsed_cues(srt)
    assert len(cues) >= 3
    assert cue_violations(cues) == []
    assert " ".join(" ".join(c.lines) for c in cues) == KO_SENTENCE
    assert cues[0].start == 12.0 and cues[-1].end == words[-1]["end"]

    path = tmp_path / "t.vtt"
    path.write_text(render("vtt", META, [sentence])[0], encoding="utf-8")
    captions = list(webvtt.read(str(path)))
    assert [c.text.split("\n") for c in captions] == [c.lines for c in cues]

    wider = _parsed_cues(render("srt", META, [sentence], max_chars=30)[0])
    assert cue_violations(wider, max_chars=30) == []
    assert cue_violations(wider) != []  # lines over 20 characters: the limit was applied
    shorter = _parsed_cues(render("srt", META, [sentence], max_duration=2.0)[0])
    assert cue_violations(shorter, max_duration=2.0) == []
    assert len(shorter) > len(cues)
    # TXT and JSON are still one entry per segment.
    assert render("txt", META, [sentence], max_chars=30)[0] == KO_SENTENCE + "\n"
    assert len(json.loads(render("json", META, [sentence])[0])["segments"][0]["words"]) == 23


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, {}),
        ({"max_chars": "", "max_duration": " "}, {}),
        ({"max_chars": "10", "max_duration": "1"}, {"max_chars": 10, "max_duration": 1.0}),
        ({"max_chars": "200", "max_duration": "30"}, {"max_chars": 200, "max_duration": 30.0}),
        ({"max_duration": "4.5"}, {"max_duration": 4.5}),
    ],
)
def test_subtitle_limits_from_the_query_string(params, expected):
    assert subtitle_limits(params) == expected


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"max_chars": "9"}, "max_chars"),
        ({"max_chars": "201"}, "max_chars"),
        ({"max_chars": "4.5"}, "max_chars"),
        ({"max_chars": "many"}, "max_chars"),
        ({"max_duration": "0.5"}, "max_duration"),
        ({"max_duration": "31"}, "max_duration"),
        ({"max_duration": "nan"}, "max_duration"),
        ({"max_duration": "inf"}, "max_duration"),
        ({"max_duration": "soon"}, "max_duration"),
    ],
)
def test_subtitle_limits_out_of_range_name_the_parameter(params, named):
    with pytest.raises(ValueError) as excinfo:
        subtitle_limits(params)
    message = str(excinfo.value)
    assert message.startswith(named) and repr(next(iter(params.values()))) in message


@pytest.mark.django_db
def test_the_export_endpoint_takes_the_subtitle_limits(cast):
    transcript = make_transcript(cast.owner, texts=[KO_SENTENCE, "네."], title="회의")
    words = _words(KO_SENTENCE, 0.0)
    Segment.objects.filter(transcript=transcript, index=0).update(end=words[-1]["end"], words=words)
    Segment.objects.filter(transcript=transcript, index=1).update(start=40.0, end=40.3)
    client = Client()
    client.force_login(cast.owner)
    url = f"/api/transcripts/{transcript.pk}/export"

    response = client.get(url, {"format": "srt"})
    assert response.status_code == 200
    default = _parsed_cues(response.content.decode())
    assert cue_violations(default) == []
    assert default[0].start == 0.0 and default[-2].end == words[-1]["end"]
    assert [c.lines for c in default[-1:]] == [["네."]]
    assert (default[-1].start, default[-1].end) == (40.0, 41.0)  # shown for a second

    response = client.get(url, {"format": "srt", "max_chars": "30"})
    assert response.status_code == 200
    wider = _parsed_cues(response.content.decode())
    assert cue_violations(wider, max_chars=30) == []
    assert max(len(line) for c in wider for line in c.lines) > 20

    response = client.get(url, {"format": "srt", "max_duration": "2"})
    assert response.status_code == 200
    shorter = _parsed_cues(response.content.decode())
    assert cue_violations(shorter, max_duration=2.0) == []
    assert max(c.end - c.start for c in default) > 2.0

    response = client.get(url, {"format": "vtt", "max_chars": "30", "max_duration": "4"})
    assert response.status_code == 200
    captions = webvtt.from_string(response.content.decode())
    both = [Cue(_vtt_seconds(c.start), _vtt_seconds(c.end), c.text.split("\n")) for c in captions]
    assert cue_violations(both, max_chars=30, max_duration=4.0) == []
    assert cue_violations(both) != [] and cue_violations(both, max_chars=30) == []
    assert both != wider
    assert client.get(url, {"format": "srt", "max_chars": "", "max_duration": ""}).content == (
        client.get(url, {"format": "srt"}).content
    )

    for params, named in [
        ({"max_chars": "5"}, "max_chars"),
        ({"max_duration": "abc"}, "max_duration"),
        ({"max_duration": "60"}, "max_duration"),
    ]:
        response = client.get(url, {"format": "srt", **params})
        assert response.status_code == 400
        assert response["Content-Type"] == "application/json"
        assert response.json()["error"].startswith(named)
    # Someone else's transcript stays invisible whatever the parameters.
    other = Client()
    other.force_login(cast.other)
    assert other.get(url, {"format": "srt", "max_chars": "30"}).status_code == 404
