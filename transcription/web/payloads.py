"""What the REST API answers, in one place: the payload builders and, beside each, the
serializer that describes it for the OpenAPI schema (tests keep the two equal).

A segment's own shape (``segment_payload``) is defined in transcription/notify.py, below the
rooms, because the batch pipeline sends it in its progress events and must never import the
web; every payload here that holds a segment starts from it.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from rest_framework import serializers

from keywords.models import Category, Keyword, Summary
from keywords.services import summary, summary_of, summary_payload
from transcription.models import Segment, Speaker, Transcript
from transcription.notify import segment_payload
from transcription.search import Term
from transcription.search.results import highlight, match_spans
from transcription.web.exports import FORMATS

__all__ = [
    "HitSerializer",
    "KeywordSerializer",
    "KeywordSummarySerializer",
    "SegmentHitSerializer",
    "SegmentDetailSerializer",
    "SegmentSerializer",
    "SpeakerSerializer",
    "SummarySerializer",
    "TranscriptDetailSerializer",
    "TranscriptListItemSerializer",
    "TranscriptSerializer",
    "WordSerializer",
    "hit_payload",
    "keyword_payload",
    "segment_detail_payload",
    "segment_hit_payload",
    "segment_payload",
    "speaker_payload",
    "summary_payload",
    "transcript_payload",
]


# --- builders ---------------------------------------------------------------------------


def transcript_payload(transcript: Transcript, *, with_segments: bool = True) -> dict[str, Any]:
    """A transcript's state (the list, the upload answer); with its segments, keywords,
    keyword summary and summary for the detail."""
    data: dict[str, Any] = {
        "id": str(transcript.pk),
        "url": reverse("api-transcript-detail", args=[transcript.pk]),
        "title": transcript.title,
        "source": transcript.source,
        "status": transcript.status,
        "error": transcript.error,
        "error_code": transcript.error_code,
        "warning": transcript.warning,
        "language": transcript.language,
        "duration": transcript.duration,
        "progress": transcript.progress,
        "created_at": transcript.created_at.isoformat(),
        "started_at": transcript.started_at.isoformat() if transcript.started_at else None,
        "finished_at": transcript.finished_at.isoformat() if transcript.finished_at else None,
        "exports": {
            fmt: reverse("api-transcript-export", args=[transcript.pk]) + f"?format={fmt}"
            for fmt in FORMATS
        },
        "audio": reverse("api-transcript-audio", args=[transcript.pk])
        if transcript.audio
        else None,
    }
    if with_segments:
        segments = list(transcript.segments.all())
        data["segments"] = [segment_payload(s) for s in segments]
        data["speakers"] = [speaker_payload(s) for s in transcript.speakers.all()]
        data["keywords"] = [keyword_payload(k) for k in transcript.keywords.all()]
        data["keyword_summary"] = summary(transcript)
        # Built in keywords.services, where the summary task builds its page event too.
        data["summary"] = summary_of(transcript, [s.text for s in segments])
    return data


def speaker_payload(speaker: Speaker) -> dict[str, Any]:
    return {"id": speaker.pk, "label": speaker.label, "name": speaker.name}


def segment_detail_payload(segment: Segment) -> dict[str, Any]:
    """One segment on its own (the segment API, the answer to an edit or a conflict): with
    who last corrected it, when, and its speaker's name."""
    return {
        **segment_payload(segment),
        "transcript": str(segment.transcript_id),
        "edited_at": segment.edited_at.isoformat() if segment.edited_at else None,
        "edited_by": segment.edited_by.get_username() if segment.edited_by else None,
        "speaker_name": str(segment.speaker) if segment.speaker else None,
    }


def keyword_payload(keyword: Keyword) -> dict[str, Any]:
    return {
        "word": keyword.word,
        "category": keyword.category,
        "importance": keyword.importance,
        "backend": keyword.backend,
        "segment": keyword.segment_id,
    }


def hit_payload(segment: Segment, terms: list[Term]) -> dict[str, Any]:
    """One segment as a search hit: its text, and the matches both as offsets and as
    escaped HTML with ``<mark>`` (safe to insert as HTML)."""
    spans = match_spans(segment.text, terms)
    return {
        # No word timings: hits are snippets, many to a page, and the search loads no words.
        **segment_payload(segment, words=False),
        "spans": [list(span) for span in spans],
        "highlighted": str(highlight(segment.text, terms, spans)),
    }


def segment_hit_payload(segment: Segment, terms: list[Term]) -> dict[str, Any]:
    """A hit of the segment search, with where its transcript is (``segment.transcript``
    should be loaded with it)."""
    transcript = segment.transcript
    return {
        **hit_payload(segment, terms),
        "transcript": str(transcript.pk),
        "transcript_title": str(transcript),
        "transcript_url": reverse("api-transcript-detail", args=[transcript.pk]),
        "page_url": reverse("transcript", args=[transcript.pk]) + f"#segment-{segment.index}",
        "source": transcript.source,
        "created_at": transcript.created_at.isoformat(),
    }


# --- serializers: the shapes above, for the OpenAPI schema ------------------------------


class SegmentFieldsSerializer(serializers.Serializer):
    """What every segment payload holds (``segment_payload`` without word timings): the
    segment, the hit and the segment detail add theirs to it."""

    id = serializers.IntegerField()
    index = serializers.IntegerField(help_text="Position in the transcript, from 0")
    start = serializers.FloatField(help_text="Seconds from the start of the audio")
    end = serializers.FloatField(help_text="Seconds from the start of the audio")
    text = serializers.CharField(help_text="The segment's text, as said (or as corrected)")
    original_text = serializers.CharField(
        allow_null=True, help_text="The machine's text when a person corrected it, else null"
    )
    edited = serializers.BooleanField(help_text="Whether a person corrected the text")
    version = serializers.IntegerField(help_text="Edits so far; an edit must name it")
    speaker = serializers.IntegerField(
        allow_null=True, help_text="Id of one of the transcript's speakers, or null"
    )


class HitSerializer(SegmentFieldsSerializer):
    spans = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField(), min_length=2, max_length=2),
        help_text="[start, end) character offsets of the matches in text",
    )
    highlighted = serializers.CharField(
        help_text="text as HTML: escaped, with the matches in <mark>; safe to insert as HTML"
    )


class SegmentHitSerializer(HitSerializer):
    transcript = serializers.UUIDField(help_text="Id of the transcript")
    transcript_title = serializers.CharField()
    transcript_url = serializers.CharField(help_text="The transcript in the API")
    page_url = serializers.CharField(help_text="The transcript page, at this segment")
    source = serializers.ChoiceField(choices=Transcript.Source.choices)
    created_at = serializers.DateTimeField(help_text="When the transcript was created")


class TranscriptSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    url = serializers.CharField(help_text="This transcript in the API")
    title = serializers.CharField(allow_blank=True)
    source = serializers.ChoiceField(choices=Transcript.Source.choices)
    status = serializers.ChoiceField(choices=Transcript.Status.choices)
    error = serializers.CharField(allow_blank=True)
    error_code = serializers.ChoiceField(
        choices=Transcript.ErrorCode.choices,
        allow_blank=True,
        help_text="Why it failed, for programs (error is for people): not_audio and "
        "decode_failed and too_long are about the file sent, the others about the server; "
        "blank unless failed",
    )
    warning = serializers.CharField(
        allow_blank=True,
        help_text="Something to know about a finished transcript, e.g. the file ended "
        "long before the length its header declares (truncated)",
    )
    language = serializers.CharField(allow_blank=True)
    duration = serializers.FloatField(allow_null=True, help_text="Seconds of audio")
    progress = serializers.FloatField(help_text="Share of the audio processed, 0 to 1")
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    exports = serializers.DictField(
        child=serializers.CharField(), help_text="Export URL per format: " + ", ".join(FORMATS)
    )
    audio = serializers.CharField(
        allow_null=True,
        help_text="The stored recording (the upload, or a live session's WAV) in the API; "
        "null when none was kept",
    )


class TranscriptListItemSerializer(TranscriptSerializer):
    matches = HitSerializer(
        many=True,
        required=False,
        help_text="With q: the first segments that contain a searched word, highlighted",
    )


class WordSerializer(serializers.Serializer):
    word = serializers.CharField(
        help_text="As Whisper writes it, usually with a leading space: the words of a segment "
        "joined and stripped are its text (unless the text was edited)"
    )
    start = serializers.FloatField(help_text="Seconds from the start of the audio")
    end = serializers.FloatField(help_text="Seconds from the start of the audio")
    probability = serializers.FloatField(help_text="Whisper's confidence in the word, 0 to 1")


class SegmentSerializer(SegmentFieldsSerializer):
    words = WordSerializer(
        many=True,
        allow_null=True,
        help_text="Word timings, in order; null when none were stored (older transcripts)",
    )


class SegmentDetailSerializer(SegmentSerializer):
    transcript = serializers.UUIDField(help_text="Id of the transcript")
    edited_at = serializers.DateTimeField(allow_null=True, help_text="Last correction")
    edited_by = serializers.CharField(allow_null=True, help_text="Who made the last correction")
    speaker_name = serializers.CharField(
        allow_null=True, help_text="The speaker's name (or machine label), or null"
    )


class SpeakerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    label = serializers.CharField(
        allow_blank=True, help_text="As a diarization backend wrote it (S1), or blank"
    )
    name = serializers.CharField(allow_blank=True, help_text="What people call them")


class KeywordSerializer(serializers.Serializer):
    word = serializers.CharField()
    category = serializers.ChoiceField(choices=Category.choices)
    importance = serializers.FloatField()
    backend = serializers.CharField()
    segment = serializers.IntegerField(allow_null=True)


class KeywordSummarySerializer(serializers.Serializer):
    word = serializers.CharField()
    category = serializers.ChoiceField(choices=Category.choices)
    count = serializers.IntegerField()
    importance = serializers.FloatField()


class SummarySerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=Summary.Status.choices,
        help_text="pending or running: being written (text etc. are the previous summary, "
        "if any); done; failed (error says why)",
    )
    error = serializers.CharField(allow_blank=True)
    text = serializers.CharField(allow_blank=True, help_text="A few sentences")
    action_items = serializers.ListField(child=serializers.CharField())
    decisions = serializers.ListField(child=serializers.CharField())
    language = serializers.CharField(allow_blank=True)
    backend = serializers.ChoiceField(
        choices=["vllm", "embedded", ""],
        help_text="What wrote it: vllm (the LLM) or embedded (the most central sentences)",
    )
    stale = serializers.BooleanField(
        help_text="The transcript's text changed after this summary was written: "
        "POST to /api/transcripts/<id>/summary to regenerate it"
    )
    finished_at = serializers.DateTimeField(allow_null=True)


class TranscriptDetailSerializer(TranscriptSerializer):
    segments = SegmentSerializer(many=True)
    speakers = SpeakerSerializer(many=True)
    keywords = KeywordSerializer(many=True)
    keyword_summary = KeywordSummarySerializer(many=True)
    summary = SummarySerializer(
        allow_null=True, help_text="null until a summary was requested (done transcripts)"
    )
