"""REST endpoints for working on a transcript: correcting a segment's text, and naming
speakers and assigning them to runs of segments. The work is done by plain functions
(transcription/editing.py, transcription/speakers.py); answers are built in payloads.py.

Another user's transcript, segment or speaker answers 404, as everywhere (access.py)."""

from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from transcription import speakers
from transcription.access import visible_transcripts
from transcription.editing import EditConflict, EditRefused, edit_text
from transcription.models import Segment, Speaker, Transcript
from transcription.web.payloads import (
    SegmentDetailSerializer,
    SpeakerSerializer,
    segment_detail_payload,
    speaker_payload,
)

NOT_YOURS = OpenApiResponse(description="Not yours, or no such segment or speaker")


class EditErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="What went wrong and what to do, for people")
    code = serializers.CharField(help_text="The same, for programs")


class ConflictSerializer(SegmentDetailSerializer):
    error = serializers.CharField(help_text="What happened, for people")
    code = serializers.CharField(help_text="version_conflict or not_finished")


class SegmentEditSerializer(serializers.Serializer):
    text = serializers.CharField(
        required=False, help_text="The corrected text (one line; at most 2000 characters)"
    )
    version = serializers.IntegerField(
        required=False, help_text="The segment's version you corrected; required with text"
    )
    speaker = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="Id of one of the transcript's speakers, or null for none",
    )


class SpeakerNameSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="What people call them (at most 100 characters)")


class AssignSerializer(serializers.Serializer):
    first = serializers.IntegerField(help_text="Index of the first segment of the run")
    last = serializers.IntegerField(
        required=False, help_text="Index of the last segment of the run (default: first)"
    )
    speaker = serializers.IntegerField(
        required=False, allow_null=True, help_text="Id of a speaker of this transcript, or null"
    )
    name = serializers.CharField(
        required=False, help_text="Instead of speaker: a name, the speaker made if new"
    )


class AssignResultSerializer(serializers.Serializer):
    assigned = serializers.IntegerField(help_text="How many segments the run held")
    speaker = SpeakerSerializer(allow_null=True)


def _refused(exc: EditRefused) -> Response:
    return Response({"error": exc.message, "code": exc.code}, status=exc.status)


def _visible_segments(request: Request) -> QuerySet[Segment]:
    return Segment.objects.filter(transcript__in=visible_transcripts(request.user)).select_related(
        "speaker", "edited_by"
    )


def _speaker_of(transcript: Transcript, raw) -> Speaker | None:
    """The transcript's speaker with id ``raw`` (None for null); another transcript's, or
    none at all, is refused the same way."""
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise speakers.SpeakerRefused(
            _("“speaker” must be the id of a speaker of this transcript, or null."), "bad_speaker"
        )
    found = transcript.speakers.filter(pk=raw).first()
    if found is None:
        raise speakers.SpeakerRefused(
            _("This transcript has no speaker with that id: list them at its speakers/ URL."),
            "bad_speaker",
        )
    return found


class SegmentDetail(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        summary="A segment",
        responses={200: SegmentDetailSerializer, 404: NOT_YOURS},
    )
    def get(self, request: Request, pk: int) -> Response:
        segment = get_object_or_404(_visible_segments(request), pk=pk)
        return Response(segment_detail_payload(segment))

    @extend_schema(
        summary="Correct a segment's text, or set its speaker",
        description="With text, send the version you corrected: if someone corrected the "
        "segment since, the answer is 409 with their text and the current version (send "
        "again with that version to keep yours). The machine's text is kept as "
        "original_text; search, exports and keywords follow the correction. Text can be "
        "corrected once the transcription is done (409 not_finished before).",
        request=SegmentEditSerializer,
        responses={
            200: SegmentDetailSerializer,
            400: EditErrorSerializer,
            404: NOT_YOURS,
            409: ConflictSerializer,
        },
    )
    def patch(self, request: Request, pk: int) -> Response:
        segment = get_object_or_404(_visible_segments(request), pk=pk)
        data = request.data if isinstance(request.data, dict) else {}
        if "text" not in data and "speaker" not in data:
            return Response(
                {"error": _("Send “text” (with “version”) or “speaker”."), "code": "nothing_to_do"},
                status=400,
            )
        try:
            # Both or neither: a refused text leaves the speaker as it was.
            with transaction.atomic():
                if "speaker" in data:
                    speaker = _speaker_of(segment.transcript, data["speaker"])
                    speakers.assign(segment.transcript, speaker, segment.index)
                if "text" in data:
                    edit_text(segment, data.get("text"), data.get("version"), request.user)
        except EditRefused as exc:  # speakers.SpeakerRefused too
            return _refused(exc)
        except EditConflict as exc:
            body = {
                "error": _(
                    "Someone else corrected this segment since you loaded it. Their text is "
                    "below; to keep yours instead, send it again with this version."
                ),
                "code": "version_conflict",
                **segment_detail_payload(exc.segment),
            }
            return Response(body, status=status.HTTP_409_CONFLICT)
        segment = _visible_segments(request).get(pk=pk)
        return Response(segment_detail_payload(segment))


class SpeakerList(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        summary="A transcript's speakers",
        responses={200: SpeakerSerializer(many=True), 404: NOT_YOURS},
    )
    def get(self, request: Request, pk) -> Response:
        transcript = get_object_or_404(visible_transcripts(request.user), pk=pk)
        return Response([speaker_payload(s) for s in transcript.speakers.all()])

    @extend_schema(
        summary="Add a speaker",
        description="Answers the speaker of that name if the transcript has one (200), "
        "else makes it (201).",
        request=SpeakerNameSerializer,
        responses={
            200: SpeakerSerializer,
            201: SpeakerSerializer,
            400: EditErrorSerializer,
            404: NOT_YOURS,
        },
    )
    def post(self, request: Request, pk) -> Response:
        transcript = get_object_or_404(visible_transcripts(request.user), pk=pk)
        try:
            speaker, made = speakers.speaker_named(transcript, _body(request).get("name"))
        except speakers.SpeakerRefused as exc:
            return _refused(exc)
        return Response(speaker_payload(speaker), status=201 if made else 200)


class SpeakerDetail(APIView):
    parser_classes = [JSONParser]

    def _speaker(self, request: Request, pk, speaker_id: int) -> Speaker:
        transcript = get_object_or_404(visible_transcripts(request.user), pk=pk)
        return get_object_or_404(transcript.speakers, pk=speaker_id)

    @extend_schema(
        summary="Rename a speaker",
        request=SpeakerNameSerializer,
        responses={200: SpeakerSerializer, 400: EditErrorSerializer, 404: NOT_YOURS},
    )
    def patch(self, request: Request, pk, speaker_id: int) -> Response:
        speaker = self._speaker(request, pk, speaker_id)
        try:
            speakers.rename(speaker, _body(request).get("name"))
        except speakers.SpeakerRefused as exc:
            return _refused(exc)
        return Response(speaker_payload(speaker))

    @extend_schema(
        summary="Remove a speaker",
        description="Its segments are left without a speaker.",
        responses={204: None, 404: NOT_YOURS},
    )
    def delete(self, request: Request, pk, speaker_id: int) -> Response:
        self._speaker(request, pk, speaker_id).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class SpeakerAssign(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        summary="Assign a speaker to a run of segments",
        description="The segments with index first to last (both included) get the speaker "
        "(by id, or by name, made if new), or none with speaker null.",
        request=AssignSerializer,
        responses={200: AssignResultSerializer, 400: EditErrorSerializer, 404: NOT_YOURS},
    )
    def post(self, request: Request, pk) -> Response:
        transcript = get_object_or_404(visible_transcripts(request.user), pk=pk)
        data = _body(request)
        try:
            if "name" in data:
                speaker, _made = speakers.speaker_named(transcript, data["name"])
            elif "speaker" in data:
                speaker = _speaker_of(transcript, data["speaker"])
            else:
                raise speakers.SpeakerRefused(
                    _("Send “speaker” (an id, or null for none) or “name”."), "bad_speaker"
                )
            count = speakers.assign(transcript, speaker, data.get("first"), data.get("last"))
        except speakers.SpeakerRefused as exc:
            return _refused(exc)
        return Response(
            {"assigned": count, "speaker": speaker_payload(speaker) if speaker else None}
        )


def _body(request: Request) -> dict:
    return request.data if isinstance(request.data, dict) else {}
