"""Speakers: the API to list, add, rename, remove and assign them (one segment or a run),
each endpoint's isolation (owner, other user, staff, anonymous), speakers in every export
format and in subtitle cues, and the place for automatic diarization with a fake backend."""

from __future__ import annotations

import json

import pysrt
import pytest
import webvtt
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from tests.factories import english_client, make_transcript
from transcription.models import Segment, Speaker
from transcription.speech import diarization
from transcription.web.exports import render
from transcription.web.payloads import SpeakerSerializer, TranscriptDetailSerializer
from transcription.web.subtitles import build_cues

pytestmark = pytest.mark.django_db

TEXTS = [
    "안녕하세요 회의를 시작하겠습니다",
    "첫 안건은 예산입니다",
    "네 알겠습니다",
    "질문 있습니다",
]


@pytest.fixture
def meeting(cast):
    return make_transcript(cast.owner, texts=TEXTS, title="회의")


def speakers_url(transcript) -> str:
    return f"/api/transcripts/{transcript.pk}/speakers/"


def post(client, url, body):
    return client.post(url, body, content_type="application/json")


def speakers_of(transcript) -> list[str | None]:
    return [
        str(s.speaker) if s.speaker else None
        for s in transcript.segments.select_related("speaker").order_by("index")
    ]


def test_add_list_rename_and_remove_speakers(cast, meeting):
    owner = english_client(cast.owner)
    made = post(owner, speakers_url(meeting), {"name": "  김민수 "})
    assert made.status_code == 201
    assert set(made.json()) == set(SpeakerSerializer().fields)
    assert made.json()["name"] == "김민수" and made.json()["label"] == ""
    # The same name again is the same speaker.
    again = post(owner, speakers_url(meeting), {"name": "김민수"})
    assert again.status_code == 200 and again.json()["id"] == made.json()["id"]
    other = post(owner, speakers_url(meeting), {"name": "Alice"}).json()
    assert [s["name"] for s in owner.get(speakers_url(meeting)).json()] == ["김민수", "Alice"]

    url = speakers_url(meeting) + f"{made.json()['id']}/"
    renamed = owner.patch(url, {"name": "김 팀장"}, content_type="application/json")
    assert renamed.status_code == 200 and renamed.json()["name"] == "김 팀장"
    taken = owner.patch(url, {"name": "Alice"}, content_type="application/json")
    assert taken.status_code == 400 and taken.json()["code"] == "name_taken"
    assert "Another speaker of this transcript is called" in taken.json()["error"]
    empty = post(owner, speakers_url(meeting), {"name": " "})
    assert empty.status_code == 400 and empty.json()["code"] == "name_missing"
    long = post(owner, speakers_url(meeting), {"name": "가" * 101})
    assert long.status_code == 400 and long.json()["code"] == "name_too_long"

    post(owner, speakers_url(meeting) + "assign", {"speaker": other["id"], "first": 0})
    assert owner.delete(speakers_url(meeting) + f"{other['id']}/").status_code == 204
    assert speakers_of(meeting)[0] is None  # its segments are left without a speaker
    assert not Speaker.objects.filter(pk=other["id"]).exists()


def test_assign_one_segment_or_a_run_by_name_or_id(cast, meeting):
    owner = english_client(cast.owner)
    assign = speakers_url(meeting) + "assign"
    response = post(owner, assign, {"name": "김민수", "first": 0, "last": 1})
    assert response.status_code == 200
    assert response.json()["assigned"] == 2
    kim = response.json()["speaker"]
    # A run selected from its end works the same.
    alice = post(owner, speakers_url(meeting), {"name": "Alice"}).json()
    assert (
        post(owner, assign, {"speaker": alice["id"], "first": 3, "last": 2}).json()["assigned"] == 2
    )
    assert speakers_of(meeting) == ["김민수", "김민수", "Alice", "Alice"]
    # One segment, and none.
    assert post(owner, assign, {"speaker": kim["id"], "first": 2}).json()["assigned"] == 1
    assert post(owner, assign, {"speaker": None, "first": 3}).json()["speaker"] is None
    assert speakers_of(meeting) == ["김민수", "김민수", "김민수", None]
    # Through the segment too.
    segment = meeting.segments.get(index=3)
    patched = owner.patch(
        f"/api/segments/{segment.pk}/", {"speaker": alice["id"]}, content_type="application/json"
    )
    assert patched.status_code == 200
    assert (patched.json()["speaker"], patched.json()["speaker_name"]) == (alice["id"], "Alice")
    # The transcript API and the segments carry them.
    detail = owner.get(f"/api/transcripts/{meeting.pk}/").json()
    assert set(detail) == set(TranscriptDetailSerializer().fields)
    assert [s["speaker"] for s in detail["segments"]] == [kim["id"]] * 3 + [alice["id"]]
    assert {s["name"] for s in detail["speakers"]} == {"김민수", "Alice"}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"name": "김민수", "first": 7}, "bad_range"),
        ({"name": "김민수", "first": -1}, "bad_range"),
        ({"name": "김민수", "first": "0"}, "bad_range"),
        ({"name": "김민수"}, "bad_range"),
        ({"first": 0}, "bad_speaker"),
        ({"speaker": 999999, "first": 0}, "bad_speaker"),
        ({"speaker": "김민수", "first": 0}, "bad_speaker"),
    ],
)
def test_bad_assignments_say_what_to_do(cast, meeting, body, code):
    response = post(english_client(cast.owner), speakers_url(meeting) + "assign", body)
    assert response.status_code == 400
    assert response.json()["code"] == code and response.json()["error"]
    assert speakers_of(meeting) == [None] * 4


def test_a_speaker_of_another_transcript_cannot_be_assigned(cast, meeting):
    elsewhere = make_transcript(cast.owner, texts=["다른 회의"])
    theirs = Speaker.objects.create(transcript=elsewhere, name="남")
    owner = english_client(cast.owner)
    response = post(owner, speakers_url(meeting) + "assign", {"speaker": theirs.pk, "first": 0})
    assert response.status_code == 400 and response.json()["code"] == "bad_speaker"
    segment = meeting.segments.get(index=0)
    response = owner.patch(
        f"/api/segments/{segment.pk}/", {"speaker": theirs.pk}, content_type="application/json"
    )
    assert response.status_code == 400
    # Nor renamed or removed through this transcript's URL.
    url = speakers_url(meeting) + f"{theirs.pk}/"
    assert owner.patch(url, {"name": "x"}, content_type="application/json").status_code == 404
    assert owner.delete(url).status_code == 404
    assert speakers_of(meeting) == [None] * 4
    theirs.refresh_from_db()
    assert theirs.name == "남"


def _calls(transcript, speaker):
    base = speakers_url(transcript)
    return [
        ("get", base, None),
        ("post", base, {"name": "침입자"}),
        ("patch", base + f"{speaker.pk}/", {"name": "김 팀장"}),
        ("post", base + "assign", {"name": "침입자", "first": 0, "last": 3}),
        ("delete", base + f"{speaker.pk}/", None),
    ]


def _send(client, method, url, body):
    if body is None:
        return getattr(client, method)(url)
    return getattr(client, method)(url, body, content_type="application/json")


@pytest.mark.parametrize("who", ["other", "anonymous"])
def test_others_and_anonymous_reach_no_speaker_endpoint(cast, meeting, who):
    speaker = Speaker.objects.create(transcript=meeting, name="김민수")
    client = english_client(cast.other) if who == "other" else Client()
    for method, url, body in _calls(meeting, speaker):
        response = _send(client, method, url, body)
        expected = (404,) if who == "other" else (401, 403)
        assert response.status_code in expected, (method, url, response.status_code)
        assert "김민수" not in response.content.decode()
    assert list(meeting.speakers.values_list("name", flat=True)) == ["김민수"]
    assert speakers_of(meeting) == [None] * 4


@pytest.mark.parametrize("who", ["owner", "staff"])
def test_the_owner_and_staff_reach_every_speaker_endpoint(cast, meeting, who):
    speaker = Speaker.objects.create(transcript=meeting, name="김민수")
    client = english_client(getattr(cast, who))
    statuses = [_send(client, *call).status_code for call in _calls(meeting, speaker)]
    assert statuses == [200, 201, 200, 200, 204]


# --- exports ---------------------------------------------------------------------------


def _assigned(cast, meeting):
    owner = english_client(cast.owner)
    post(owner, speakers_url(meeting) + "assign", {"name": "김민수", "first": 0, "last": 1})
    post(owner, speakers_url(meeting) + "assign", {"name": "Alice <A&B>", "first": 2})
    return owner


def test_speakers_in_every_export_format(cast, meeting):
    owner = _assigned(cast, meeting)
    url = f"/api/transcripts/{meeting.pk}/export"

    vtt_file = owner.get(url, {"format": "vtt"}).content.decode()
    assert "<v Alice &lt;A&amp;B&gt;>네 알겠습니다" in vtt_file  # the name escaped as markup
    vtt = webvtt.from_string(vtt_file)
    assert [c.voice for c in vtt][:3] == ["김민수", "김민수", "Alice &lt;A&amp;B&gt;"]
    assert vtt[3].voice in (None, "")

    srt = [
        s.text.replace("\n", " ")
        for s in pysrt.from_string(owner.get(url, {"format": "srt"}).content.decode())
    ]
    assert srt == [
        "김민수: 안녕하세요 회의를 시작하겠습니다",
        "첫 안건은 예산입니다",
        "Alice <A&B>: 네 알겠습니다",
        "질문 있습니다",
    ]

    txt = owner.get(url, {"format": "txt"}).content.decode().splitlines()
    assert txt == [
        "김민수: 안녕하세요 회의를 시작하겠습니다",
        "김민수: 첫 안건은 예산입니다",
        "Alice <A&B>: 네 알겠습니다",
        "질문 있습니다",
    ]

    document = json.loads(owner.get(url, {"format": "json"}).content)
    assert [s["speaker"] for s in document["segments"]] == ["김민수", "김민수", "Alice <A&B>", None]
    assert [(s["label"], s["name"]) for s in document["speakers"]] == [
        ("", "김민수"),
        ("", "Alice <A&B>"),
    ]


def test_a_cue_never_holds_two_speakers_and_names_count_in_the_line():
    # Two short segments close together would be merged into one cue; of two speakers, not.
    segments = [
        {"start": 0.0, "end": 0.5, "text": "네", "speaker": "김민수"},
        {"start": 0.6, "end": 1.0, "text": "아니요", "speaker": "Alice"},
        {"start": 1.1, "end": 1.5, "text": "좋아요", "speaker": "Alice"},
    ]
    cues = build_cues(segments)
    assert [c.speaker for c in cues] == ["김민수", "Alice"]
    assert [c.text for c in cues] == ["네", "아니요 좋아요"]
    unnamed = build_cues([{**s, "speaker": None} for s in segments])
    # The same segments without speakers: the first two share a cue.
    assert unnamed[0].text == "네 아니요"

    # SRT: a name is never left alone at the end of a cue or line, and lines keep their
    # limit (20 characters of Korean) with it.
    long = [
        {
            "start": 0.0,
            "end": 6.0,
            "text": "가나다라 마바사아 자차카타 파하가나 다라마바 사아자차",
            "speaker": "김민수",
        }
    ]
    subs = pysrt.from_string(render("srt", {}, long)[0])
    lines = [line for s in subs for line in s.text.split("\n")]
    assert lines[0].startswith("김민수: 가나다라")
    assert all(len(line) <= 20 for line in lines), lines


# --- automatic diarization -------------------------------------------------------------


class FakeDiarizer:
    """Alternates two speakers, as a real backend would label a dialogue."""

    seen: list = []

    def label(self, audio, spans):
        FakeDiarizer.seen.append((audio, list(spans)))
        return ["S1" if n % 2 == 0 else "S2" for n in range(len(spans))]


def test_the_diarization_setting_is_strict(settings):
    assert diarization.parse_setting(None) == "none"
    assert diarization.parse_setting(" None ") == "none"
    assert diarization.parse_setting("tests.web.test_speakers.FakeDiarizer") == (
        "tests.web.test_speakers.FakeDiarizer"
    )
    with pytest.raises(ImproperlyConfigured, match="DIARIZATION_BACKEND"):
        diarization.parse_setting("pyannote 3.1")
    settings.DIARIZATION_BACKEND = "tests.web.test_speakers.NoSuchBackend"
    with pytest.raises(ImproperlyConfigured, match="DIARIZATION_BACKEND.*cannot be imported"):
        diarization.check()
    settings.DIARIZATION_BACKEND = "none"
    diarization.check()
    assert diarization.backend() is None


def test_people_keep_their_speakers_when_labels_come(cast, meeting):
    from transcription.speakers import apply_labels

    first = meeting.segments.get(index=0)
    post(
        english_client(cast.owner), speakers_url(meeting) + "assign", {"name": "김민수", "first": 0}
    )
    labels = {s.pk: "S1" for s in meeting.segments.all()}
    assert apply_labels(meeting, labels) == 3
    assert speakers_of(meeting) == ["김민수", "S1", "S1", "S1"]
    assert Segment.objects.get(pk=first.pk).speaker.name == "김민수"


@pytest.mark.slow
def test_the_pipeline_writes_a_backends_labels_and_the_exports_show_them(
    cast, settings, eval_clip, media, tmp_path
):
    """The one call site: after a file's segments are stored, labels become speakers."""
    from django.core.files import File

    from tests.audio_files import long_file_with_gaps
    from transcription.batch.pipeline import transcribe_transcript
    from transcription.models import Transcript

    settings.DIARIZATION_BACKEND = "tests.web.test_speakers.FakeDiarizer"
    FakeDiarizer.seen.clear()
    clips = [eval_clip(i)[0] for i in ("ko_zeroth_104_003_0294", "ko_picovoice_leopard_test_ko")]
    path, _spans = long_file_with_gaps(tmp_path / "two.wav", clips, gap_s=3.0)
    transcript = Transcript.objects.create(
        owner=cast.owner, source=Transcript.Source.UPLOAD, language="ko"
    )
    with open(path, "rb") as handle:
        transcript.audio.save("two.wav", File(handle), save=True)

    result = transcribe_transcript(transcript.pk)
    assert result.status == Transcript.Status.DONE
    segments = list(result.segments.select_related("speaker").order_by("index"))
    assert len(segments) >= 2
    # Called once, with every segment's times, in order.
    assert [spans for _audio, spans in FakeDiarizer.seen] == [[(s.start, s.end) for s in segments]]
    assert [s.speaker.label for s in segments] == [
        "S1" if n % 2 == 0 else "S2" for n in range(len(segments))
    ]
    txt = english_client(cast.owner).get(
        f"/api/transcripts/{transcript.pk}/export", {"format": "txt"}
    )
    assert [line.split(":")[0] for line in txt.content.decode().splitlines()] == [
        s.speaker.label for s in segments
    ]
    vtt = webvtt.from_string(
        english_client(cast.owner)
        .get(f"/api/transcripts/{transcript.pk}/export", {"format": "vtt"})
        .content.decode()
    )
    assert {c.voice for c in vtt} == {"S1", "S2"}


def test_no_backend_writes_no_speakers(cast, settings, meeting):
    from transcription.batch.pipeline import _diarize

    settings.DIARIZATION_BACKEND = "none"
    _diarize(meeting, "unused.wav")
    assert not meeting.speakers.exists()
