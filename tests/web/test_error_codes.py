"""A failed transcript's error code: set where it fails (the batch pipeline, the stt task),
shown by the REST API, and what the OpenAI-compatible endpoint decides 400 or 500 by, never
the wording of the message."""

from __future__ import annotations

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.authtoken.models import Token

from tests.factories import make_transcript
from transcription import tasks
from transcription.batch.pipeline import claim, transcribe_transcript
from transcription.models import Transcript
from transcription.web import openai_api

ErrorCode = Transcript.ErrorCode
SWEPT = (
    "transcription stopped: no worker finished it within 3600 s "
    "(worker lost or time limit reached); upload it again"
)


def queued(**fields) -> Transcript:
    return Transcript.objects.create(source=Transcript.Source.UPLOAD, language="ko", **fields)


# --- where a transcript fails ---------------------------------------------------------------


@pytest.mark.django_db
def test_the_pipeline_names_what_was_wrong_with_the_audio(media):
    text = queued()
    text.audio.save("notes.mp3", ContentFile(b"minutes of the meeting, not a recording\n" * 20))
    broken = queued()
    broken.audio.save("upload.wav", ContentFile(b"RIFF....WAVEfmt " + b"\x00" * 64))
    gone = queued()
    gone.audio.save("gone.wav", ContentFile(b"RIFF"))
    gone.audio.storage.delete(gone.audio.name)
    missing = queued()

    results = {name: transcribe_transcript(t.pk) for name, t in
               [("text", text), ("broken", broken), ("gone", gone), ("missing", missing)]}  # fmt: skip

    assert all(r.status == Transcript.Status.FAILED and r.error for r in results.values())
    # What was sent is at fault...
    assert results["text"].error_code == ErrorCode.NOT_AUDIO
    assert results["broken"].error_code in (ErrorCode.NOT_AUDIO, ErrorCode.DECODE_FAILED)
    # ...or the server lost what it stored.
    assert results["gone"].error_code == ErrorCode.NO_AUDIO
    assert results["missing"].error_code == ErrorCode.NO_AUDIO
    stored = Transcript.objects.get(pk=text.pk)
    assert (stored.status, stored.error_code) == (Transcript.Status.FAILED, ErrorCode.NOT_AUDIO)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("raised", "code"),
    [(SoftTimeLimitExceeded(), ErrorCode.TIME_LIMIT), (RuntimeError("boom"), ErrorCode.INTERNAL)],
)
def test_the_task_names_its_own_failures(monkeypatch, raised, code):
    transcript = queued()

    def fails(*args, **kwargs):
        raise raised

    monkeypatch.setattr(tasks, "transcribe_transcript", fails)
    tasks.transcribe.apply(args=[str(transcript.pk)])
    transcript.refresh_from_db()
    assert (transcript.status, transcript.error_code) == (Transcript.Status.FAILED, code)


@pytest.mark.django_db
def test_a_new_attempt_clears_the_last_failure():
    transcript = queued(error="internal error: boom", error_code=ErrorCode.INTERNAL)
    assert claim(transcript.pk, "task-a")
    transcript.refresh_from_db()
    assert (transcript.error, transcript.error_code) == ("", "")


@pytest.mark.django_db
def test_the_rest_api_shows_the_code(cast):
    transcript = make_transcript(cast.owner, texts=())
    Transcript.objects.filter(pk=transcript.pk).update(
        status=Transcript.Status.FAILED,
        error="not an audio or video file that can be read",
        error_code=ErrorCode.NOT_AUDIO,
    )
    done = make_transcript(cast.owner)
    client = Client()
    client.force_login(cast.owner)
    assert client.get(f"/api/transcripts/{transcript.pk}/").json()["error_code"] == "not_audio"
    assert client.get(f"/api/transcripts/{done.pk}/").json()["error_code"] == ""
    listed = client.get("/api/transcripts/").json()["results"]
    assert {item["error_code"] for item in listed} == {"not_audio", ""}


# --- what the OpenAI-compatible endpoint answers ----------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("code", "error", "status"),
    [
        (
            ErrorCode.NOT_AUDIO,
            "not an audio or video file (it looks like text); send a recording such as wav",
            400,
        ),
        # The decoder's own words may say "internal error": still the file's fault.
        (ErrorCode.DECODE_FAILED, "internal error in the decoder: invalid data found", 400),
        (ErrorCode.NO_AUDIO, "the transcript has no stored audio file", 500),
        (ErrorCode.TIME_LIMIT, "transcription took longer than 3600 s", 500),
        (ErrorCode.INTERNAL, "internal error: RuntimeError: boom", 500),
        (ErrorCode.WORKER_LOST, SWEPT, 500),
        # No code recorded (a row failed before codes existed): never blamed on the client.
        ("", SWEPT, 500),
    ],
)
def test_openai_failures_are_400_or_500_by_the_code(cast, monkeypatch, code, error, status):
    def store_failed(upload, user, language):
        return Transcript.objects.create(
            owner=user,
            source=Transcript.Source.UPLOAD,
            title=upload.name,
            status=Transcript.Status.FAILED,
            error=error,
            error_code=code,
        )

    monkeypatch.setattr(openai_api, "_store", store_failed)
    token = Token.objects.create(user=cast.owner)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token.key}", HTTP_ACCEPT_LANGUAGE="en")
    response = client.post(
        "/v1/audio/transcriptions",
        {"model": "whisper-1", "file": SimpleUploadedFile("clip.wav", b"RIFF")},
    )
    assert response.status_code == status, response.content
    body = response.json()["error"]
    assert body["message"] == f"Transcription failed: {error}"
    assert body["type"] == ("invalid_request_error" if status == 400 else "server_error")
    assert body["param"] == ("file" if status == 400 else None)
    assert body["transcript_id"]
    assert response["x-should-retry"] == "false"
