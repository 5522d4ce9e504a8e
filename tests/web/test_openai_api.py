"""The OpenAI-compatible endpoint, driven by the real ``openai`` package against daphne and a
real stt worker: what OpenAI's clients get back, and that the result lands in the history."""

from __future__ import annotations

import threading
import time

import httpx
import numpy as np
import openai
import pysrt
import pytest
import webvtt
from openai.types.audio import Transcription, TranscriptionSegment, TranscriptionVerbose
from rest_framework.authtoken.models import Token

from bench.cer import cer
from tests.audio_files import write_wav
from tests.celery_workers import running_worker
from tests.factories import make_user
from tests.servers import running_web
from transcription.models import Transcript
from transcription.speech.languages import LANGUAGE_NAMES, WHISPER_LANGUAGES
from transcription.web.openai_api import compression_ratio, model_ids

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

KO_CLIP = "ko_zeroth_104_003_0294"  # 6.9 s of read Korean speech
EN_CLIP = "en_librispeech_1089-134686-0001"  # 3.3 s of English


@pytest.fixture(scope="module")
def web(django_db_blocker, django_db_setup):
    with django_db_blocker.unblock(), running_web() as url:
        yield url


@pytest.fixture(scope="module")
def stt_worker(django_db_blocker, django_db_setup):
    with django_db_blocker.unblock(), running_worker("stt") as worker:
        yield worker


@pytest.fixture
def api_user(transactional_db):
    user = make_user("api-user")
    return user, Token.objects.create(user=user).key


def client_for(url: str, key: str) -> openai.OpenAI:
    # No retries: a test must see the first answer, and a retried upload would transcribe twice.
    # The messages' wording is checked in English (Korean is the default).
    return openai.OpenAI(
        base_url=url + "/v1",
        api_key=key,
        max_retries=0,
        timeout=300,
        default_headers={"Accept-Language": "en"},
    )


@pytest.fixture
def client(web, api_user) -> openai.OpenAI:
    return client_for(web, api_user[1])


def transcribe(client: openai.OpenAI, path, **options):
    with open(path, "rb") as audio:
        return client.audio.transcriptions.create(model="whisper-1", file=audio, **options)


# --- Without a worker: these run first, before the module's stt worker is started ----------


def test_model_ids_name_the_served_model(settings):
    settings.WHISPER_MODEL = "/srv/models/whisper-large-v3/"
    assert model_ids() == ["whisper-1", "whisper-large-v3"]
    settings.WHISPER_MODEL = "Systran/faster-whisper-large-v3"
    assert model_ids() == ["whisper-1", "Systran/faster-whisper-large-v3"]
    settings.WHISPER_MODEL = "large-v3"
    assert model_ids() == ["whisper-1", "large-v3"]


def test_pure_helpers_cover_whisper():
    assert set(WHISPER_LANGUAGES) <= set(LANGUAGE_NAMES)
    assert LANGUAGE_NAMES["ko"] == "korean"
    assert compression_ratio("") == 0.0
    # Repetition, the mark of a hallucination, compresses well.
    assert compression_ratio("감사합니다 " * 40) > 2.4 > compression_ratio("지난해 삼월 장관")


def test_timeout_answers_504_with_the_transcript_and_does_not_block_the_server(
    api_user, eval_clip, tmp_path
):
    user, key = api_user
    path, _ = eval_clip(KO_CLIP)
    # No stt worker runs yet, so the transcript stays queued past the 2 s time-out.
    with running_web(extra_env={"OPENAI_API_TIMEOUT_S": "2", "UPLOAD_MAX_MB": "1"}) as url:
        outcome: dict = {}

        def call() -> None:
            try:
                transcribe(client_for(url, key), path, language="ko")
            except openai.APIStatusError as exc:
                outcome["error"] = exc

        waiting = threading.Thread(target=call)
        waiting.start()
        time.sleep(0.7)
        # While that request waits, the same server answers others at once.
        started = time.monotonic()
        listed = client_for(url, key).models.list()
        assert time.monotonic() - started < 1.0
        assert listed.data
        waiting.join(timeout=30)
        error = outcome["error"]
        assert error.status_code == 504
        assert error.code == "timeout"
        transcript = Transcript.objects.get(pk=error.body["transcript_id"])
        assert transcript.owner == user and transcript.status == Transcript.Status.QUEUED
        assert str(transcript.pk) in error.message
        assert error.response.headers["x-should-retry"] == "false"

        # Larger than UPLOAD_MAX_MB: 413 before anything is stored.
        big = write_wav(tmp_path / "big.wav", np.zeros(16000 * 40, dtype=np.float32))
        with pytest.raises(openai.APIStatusError) as too_big:
            transcribe(client_for(url, key), big)
        assert too_big.value.status_code == 413
        assert "1 MB" in too_big.value.message
        assert Transcript.objects.count() == 1


def test_a_wrong_or_missing_key_is_401_in_openai_shape(web, api_user, eval_clip):
    path, _ = eval_clip(KO_CLIP)
    with pytest.raises(openai.AuthenticationError) as caught:
        transcribe(client_for(web, "not-a-real-token-at-all"), path)
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"
    assert "Incorrect API key" in caught.value.message
    with pytest.raises(openai.AuthenticationError):
        client_for(web, "wrong").models.list()
    # No Authorization header at all: the same shape, from a plain HTTP client.
    response = httpx.post(web + "/v1/audio/transcriptions", files={"file": b"x"})
    assert response.status_code == 401
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    assert not Transcript.objects.exists()


def test_a_file_that_is_not_audio_is_a_bad_request(client, tmp_path):
    fake = tmp_path / "report.mp3"
    fake.write_bytes(b"%PDF-1.4 definitely not audio " * 100)
    with pytest.raises(openai.BadRequestError) as caught:
        transcribe(client, fake)
    error = caught.value
    assert error.status_code == 400
    assert error.param == "file"
    assert "Invalid file format" in error.message and "not an audio" in error.message
    assert "report.mp3" in error.message
    assert not Transcript.objects.exists()


def test_bad_parameters_are_bad_requests(web, api_user, client, eval_clip):
    path, _ = eval_clip(KO_CLIP)
    for options, param in [
        ({"response_format": "docx"}, "response_format"),
        ({"language": "klingon"}, "language"),
        ({"temperature": 3}, "temperature"),
        ({"timestamp_granularities": ["sentence"]}, "timestamp_granularities"),
    ]:
        with pytest.raises(openai.BadRequestError) as caught:
            transcribe(client, path, **options)
        assert caught.value.param == param, options
        assert caught.value.type == "invalid_request_error"
    # The openai package will not send a request without a file; a plain form can.
    response = httpx.post(
        web + "/v1/audio/transcriptions",
        headers={"Authorization": f"Bearer {api_user[1]}", "Accept-Language": "en"},
        data={"model": "whisper-1"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "file"
    assert "multipart field 'file'" in response.json()["error"]["message"]
    assert not Transcript.objects.exists()


def test_models_are_listed_for_clients_that_ask(client):
    ids = [model.id for model in client.models.list()]
    assert ids == model_ids()
    assert "whisper-1" in ids
    assert client.models.retrieve("whisper-1").owned_by == "speech-platform"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o-transcribe")


# --- With the real stt worker ------------------------------------------------------------------


def test_json_is_transcribed_and_kept_in_the_history(client, api_user, stt_worker, eval_clip):
    user, _ = api_user
    path, entry = eval_clip(KO_CLIP)
    result = transcribe(client, path, language="ko", prompt="회의록", temperature=0)
    assert isinstance(result, Transcription)
    assert cer(entry["reference"], result.text, numerals=True) < 0.3, result.text
    transcript = Transcript.objects.get()
    assert transcript.owner == user
    assert transcript.source == Transcript.Source.UPLOAD
    assert transcript.title == path.name
    assert transcript.status == Transcript.Status.DONE
    assert transcript.language == "ko"
    segments = list(transcript.segments.order_by("index"))
    assert segments
    assert result.text == " ".join(s.text.strip() for s in segments)


def test_text_srt_and_vtt(client, stt_worker, eval_clip):
    path, entry = eval_clip(KO_CLIP)
    text = transcribe(client, path, language="ko", response_format="text")
    assert isinstance(text, str) and text.endswith("\n")
    assert cer(entry["reference"], text.strip(), numerals=True) < 0.3, text

    srt = transcribe(client, path, language="ko", response_format="srt")
    subs = pysrt.from_string(srt)
    assert len(subs) >= 1
    assert all(0 <= s.start.ordinal <= s.end.ordinal <= entry["duration_s"] * 1000 for s in subs)
    assert " ".join(s.text.replace("\n", " ") for s in subs) == text.strip()

    vtt = transcribe(client, path, language="ko", response_format="vtt")
    assert vtt.startswith("WEBVTT\n")
    captions = webvtt.from_string(vtt)
    assert [c.text for c in captions] == [s.text for s in subs]
    # Each call is its own transcript in the history.
    assert Transcript.objects.filter(status=Transcript.Status.DONE).count() == 3


def test_verbose_json_matches_openais_model(client, stt_worker, eval_clip):
    path, entry = eval_clip(KO_CLIP)
    result = transcribe(
        client,
        path,
        language="ko",
        response_format="verbose_json",
        timestamp_granularities=["segment", "word"],
    )
    assert isinstance(result, TranscriptionVerbose)
    assert result.language == "korean"
    assert abs(result.duration - entry["duration_s"]) < 0.1
    assert result.segments and all(isinstance(s, TranscriptionSegment) for s in result.segments)
    assert [s.id for s in result.segments] == list(range(len(result.segments)))
    for segment in result.segments:
        assert 0 <= segment.start <= segment.end <= result.duration + 0.01
        assert segment.tokens == [] and segment.temperature == 0.0
        assert segment.avg_logprob < 0 and 0 <= segment.no_speech_prob <= 1
        assert segment.compression_ratio > 0
        assert segment.seek == round(segment.start * 100)
    assert result.text == " ".join(s.text.strip() for s in result.segments)
    assert result.words is not None  # asked for; empty unless the pipeline stored words
    assert result.usage.seconds == result.duration
    transcript = Transcript.objects.get()
    assert transcript.segments.count() == len(result.segments)


def test_a_missing_language_is_detected_as_openai_does(client, stt_worker, eval_clip):
    path, _ = eval_clip(EN_CLIP)
    result = transcribe(client, path, response_format="verbose_json")
    assert result.language == "english"
    assert Transcript.objects.get().language == "en"
    assert any(word in result.text.lower() for word in ("stuff", "belly", "stew")), result.text


def test_plain_curl_style_form_works_too(web, api_user, stt_worker, eval_clip):
    _, key = api_user
    path, _ = eval_clip(EN_CLIP)
    with open(path, "rb") as audio:
        response = httpx.post(
            web + "/v1/audio/transcriptions",
            headers={"Authorization": f"Bearer {key}"},
            files={"file": (path.name, audio)},
            data={"model": "whisper-base", "language": "english", "response_format": "json"},
            timeout=300,
        )
    assert response.status_code == 200, response.text
    transcript = Transcript.objects.get()
    assert response.headers["X-Transcript-Id"] == str(transcript.pk)
    assert response.json()["text"] == " ".join(
        s.text.strip() for s in transcript.segments.order_by("index")
    )
    assert transcript.language == "en"
