"""Word timings on their way out: the transcript's REST detail, the progress events, the
OpenAPI schema, the OpenAI-compatible ``verbose_json`` and the transcript page's word spans;
and what stays compact (the list, search hits). Rows are real, in PostgreSQL.

The words are faster-whisper ``base``'s on ``jfk.wav`` of the eval set (word_timestamps=True),
split into two segments at the pause after "Americans,".
"""

from __future__ import annotations

import json

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from tests.factories import make_transcript
from transcription.models import Segment, Transcript
from transcription.notify import segment_payload
from transcription.web.openai_api import verbose_json
from transcription.web.pages import display_words
from transcription.web.payloads import TranscriptDetailSerializer

pytestmark = pytest.mark.django_db

# (word as Whisper writes it, start, end, probability)
JFK_WORDS = [
    (" And", 0.0, 0.52, 0.664),
    (" so", 0.52, 0.82, 0.986),
    (" my", 0.82, 1.18, 0.812),
    (" fellow", 1.18, 1.56, 0.994),
    (" Americans,", 1.56, 2.1, 0.93),
    (" ask", 3.02, 3.74, 0.939),
    (" not", 3.74, 4.24, 0.709),
    (" what", 4.24, 5.52, 0.903),
    (" your", 5.52, 5.76, 0.984),
    (" country", 5.76, 6.24, 0.999),
    (" can", 6.24, 6.6, 0.996),
    (" do", 6.6, 6.82, 0.994),
    (" for", 6.82, 7.08, 0.99),
    (" you,", 7.08, 7.38, 0.996),
    (" ask", 7.96, 8.46, 0.927),
    (" what", 8.46, 8.76, 0.94),
    (" you", 8.76, 9.02, 0.987),
    (" can", 9.02, 9.32, 0.996),
    (" do", 9.32, 9.56, 0.994),
    (" for", 9.56, 9.78, 0.997),
    (" your", 9.78, 9.94, 0.997),
    (" country.", 9.94, 10.36, 0.999),
]


def word_dicts(rows) -> list[dict]:
    return [{"word": w, "start": s, "end": e, "probability": p} for w, s, e, p in rows]


FIRST = word_dicts(JFK_WORDS[:5])
SECOND = word_dicts(JFK_WORDS[5:])


def text_of(words: list[dict]) -> str:
    return "".join(w["word"] for w in words).strip()


def jfk_transcript(owner, *, status=Transcript.Status.DONE, third: bool = True) -> Transcript:
    """Two segments with words; with ``third``, an old-style one (words null) after them."""
    transcript = make_transcript(owner, texts=[], title="jfk", duration=11.0)
    Transcript.objects.filter(pk=transcript.pk).update(status=status, language="en")
    transcript.refresh_from_db()
    for index, words in enumerate([FIRST, SECOND]):
        Segment.objects.create(
            transcript=transcript,
            index=index,
            start=words[0]["start"],
            end=words[-1]["end"],
            text=text_of(words),
            words=words,
        )
    if third:
        Segment.objects.create(
            transcript=transcript, index=2, start=10.4, end=11.0, text="(박수)", words=None
        )
    return transcript


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- the REST API ---------------------------------------------------------------------------


def test_detail_segments_carry_their_words_or_null(cast):
    transcript = jfk_transcript(cast.owner)
    body = client_for(cast.owner).get(f"/api/transcripts/{transcript.pk}/").json()
    segments = body["segments"]
    assert [s["words"] for s in segments] == [FIRST, SECOND, None]
    # The shapes the schema gives them.
    segment_fields = TranscriptDetailSerializer().fields["segments"].child.fields
    assert set(segments[0]) == set(segment_fields)
    assert set(segments[0]["words"][0]) == set(segment_fields["words"].child.fields)
    # The contract: the words, joined and stripped, are the text.
    assert all(text_of(s["words"]) == s["text"] for s in segments[:2])
    # Token clients see the same.
    token = Token.objects.create(user=cast.owner).key
    by_token = Client().get(
        f"/api/transcripts/{transcript.pk}/", HTTP_AUTHORIZATION=f"Token {token}"
    )
    assert by_token.json()["segments"][1]["words"] == SECOND


def test_lists_and_search_hits_stay_compact(cast):
    transcript = jfk_transcript(cast.owner)
    owner = client_for(cast.owner)
    listed = owner.get("/api/transcripts/", {"q": "country"}).json()["results"]
    assert [item["id"] for item in listed] == [str(transcript.pk)]
    assert "segments" not in listed[0]
    assert listed[0]["matches"] and all("words" not in m for m in listed[0]["matches"])
    hits = owner.get("/api/segments/", {"q": "country"}).json()["results"]
    assert [h["index"] for h in hits] == [1]
    assert "words" not in hits[0]


def test_progress_events_carry_words_unless_asked_not_to(cast):
    transcript = jfk_transcript(cast.owner)
    first, _second, old = transcript.segments.order_by("index")
    event = segment_payload(first)
    assert event["words"] == FIRST
    # Through JSON (the channel layer and the socket) unchanged.
    assert json.loads(json.dumps(event)) == event
    assert segment_payload(old)["words"] is None
    assert "words" not in segment_payload(first, words=False)


def test_schema_documents_words(owner_client):
    response = owner_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    schemas = json.loads(response.content)["components"]["schemas"]
    words = schemas["Segment"]["properties"]["words"]
    assert words["type"] == "array" and words.get("nullable") is True
    item = schemas[words["items"]["$ref"].rsplit("/", 1)[1]]
    assert set(item["properties"]) == {"word", "start", "end", "probability"}
    assert "words" not in schemas["Hit"]["properties"]


# --- the OpenAI-compatible endpoint ---------------------------------------------------------


def test_verbose_json_words_in_openais_shape(cast):
    transcript = jfk_transcript(cast.owner)
    segments = list(transcript.segments.order_by("index"))
    body = verbose_json(transcript, segments, ["word"])
    # Stripped words, in order across segments; the segment without words adds none.
    assert body["words"] == [{"word": w.strip(), "start": s, "end": e} for w, s, e, _p in JFK_WORDS]
    assert "segments" not in body  # only what was asked for, as OpenAI does
    both = verbose_json(transcript, segments, ["segment", "word"])
    assert len(both["segments"]) == 3 and len(both["words"]) == len(JFK_WORDS)
    assert "words" not in verbose_json(transcript, segments, [])


# --- the transcript page, as the server renders it ------------------------------------------


def test_page_renders_words_as_spans_and_plain_text_otherwise(cast, media):
    transcript = jfk_transcript(cast.owner)
    # A person edited the second segment: its words no longer spell it, so they are not shown.
    Segment.objects.filter(transcript=transcript, index=1).update(text="ask not, ever")
    html = client_for(cast.owner).get(f"/transcripts/{transcript.pk}/").content.decode()
    first = html.split('id="segment-0"', 1)[1].split("</li>", 1)[0]
    assert (
        '<span class="text"><span class="word" data-start="0.000" data-end="0.520">And</span>'
        ' <span class="word" data-start="0.520" data-end="0.820">so</span> '
    ) in first
    assert first.count('class="word"') == 5
    second = html.split('id="segment-1"', 1)[1].split("</li>", 1)[0]
    assert 'class="word"' not in second and '<span class="text">ask not, ever</span>' in second
    third = html.split('id="segment-2"', 1)[1].split("</li>", 1)[0]
    assert '<span class="text">(박수)</span>' in third


def test_display_words_keeps_the_text_exactly():
    korean = [
        {"word": " 삼성전자의", "start": 0.0, "end": 0.6, "probability": 0.9},
        {"word": " 새", "start": 0.6, "end": 0.8, "probability": 0.9},
        {"word": " 공장이", "start": 0.8, "end": 1.3, "probability": 0.9},
    ]
    shown = display_words("삼성전자의 새 공장이", korean)
    assert (
        "".join(w["leading"] + w["word"] + w["trailing"] for w in shown) == "삼성전자의 새 공장이"
    )
    assert [w["word"] for w in shown] == ["삼성전자의", "새", "공장이"]
    assert (shown[1]["start"], shown[1]["end"]) == (0.6, 0.8)
    assert display_words("삼성전자의 새 공장이", None) is None
    assert display_words("삼성전자의 새 공장이", []) is None
    assert display_words("삼성전자 새 공장", korean) is None  # edited text
    broken = [dict(korean[0], start=None), *korean[1:]]
    assert display_words("삼성전자의 새 공장이", broken) is None
