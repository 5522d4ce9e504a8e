"""Stored audio in S3-compatible object storage (transcription/storage.py), against a real S3
server on loopback (moto's): STORAGE_URL parsing, ranged reads, the workers' local copies,
live recordings spooled and put into the bucket, the player's byte ranges, deletion.
The two-host run of a web process and a worker is tests/test_two_hosts.py."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.test import Client
from rest_framework.authtoken.models import Token

from sttproject.env import parse_storage_url
from tests.object_storage import ACCESS_KEY, REGION, SECRET_KEY, running_s3
from transcription import storage
from transcription.models import Transcript

RATE = 16000


# --- STORAGE_URL ---------------------------------------------------------------------------


def test_without_storage_url_files_stay_on_the_local_file_system():
    assert parse_storage_url("STORAGE_URL", None) == {
        "BACKEND": "django.core.files.storage.FileSystemStorage"
    }


def test_a_bucket_url_becomes_s3_storage_with_its_options():
    url = (
        "s3://AKIA123:se%2Fcr%2Bet@stt-audio/platform/audio"
        "?endpoint_url=http://minio:9000&region=us-east-1"
    )
    entry = parse_storage_url("STORAGE_URL", url)
    assert entry["BACKEND"] == "storages.backends.s3.S3Storage"
    options = entry["OPTIONS"]
    assert options["bucket_name"] == "stt-audio"
    assert options["location"] == "platform/audio"
    assert options["endpoint_url"] == "http://minio:9000"
    assert options["region_name"] == "us-east-1"
    assert (options["access_key"], options["secret_key"]) == ("AKIA123", "se/cr+et")
    assert options["addressing_style"] == "path"  # MinIO, Ceph: by path
    assert options["file_overwrite"] is False  # two uploads of one name stay two objects
    assert options["default_acl"] is None


def test_keys_left_out_come_from_the_aws_environment():
    options = parse_storage_url("STORAGE_URL", "s3://stt-audio?region=eu-central-1")["OPTIONS"]
    # None: boto3 reads AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or a profile, a role).
    assert options["access_key"] is None and options["secret_key"] is None
    assert options["endpoint_url"] is None and options["addressing_style"] == "auto"
    assert options["location"] == ""


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("minio:9000/stt", "must be an s3:// URL"),
        ("https://stt.s3.amazonaws.com", "must be an s3:// URL"),
        ("s3://Stt_Audio", "is not a bucket name"),
        ("s3://", "is not a bucket name"),
        ("s3://key@stt-audio", "both the access key and the secret key"),
        ("s3://stt-audio?endpoint=http://minio:9000", "unknown option(s) endpoint"),
        ("s3://stt-audio?endpoint_url=minio:9000", "is not an http(s)://host[:port] URL"),
        ("s3://stt-audio?endpoint_url=http://minio:port", "is not an http(s)://host[:port] URL"),
        ("s3://stt-audio?region=EU%20West", "is not a region name"),
        ("s3://stt-audio?addressing_style=dns", "addressing_style='dns'"),
        ("s3://stt-audio/a/../b", "is not a folder name"),
    ],
)
def test_a_bad_storage_url_names_the_variable(url, says):
    with pytest.raises(ImproperlyConfigured, match="STORAGE_URL") as raised:
        parse_storage_url("STORAGE_URL", url)
    assert says in str(raised.value)


def test_the_secret_key_never_appears_in_an_error():
    with pytest.raises(ImproperlyConfigured) as raised:
        parse_storage_url("STORAGE_URL", "s3://key:TopSecret1@stt-audio?colour=blue")
    assert "TopSecret1" not in str(raised.value) and "key:***@stt-audio" in str(raised.value)


def test_the_settings_read_storage_url(monkeypatch):
    import runpy

    from tests.workers.test_settings import SETTINGS_FILE

    monkeypatch.setenv("STORAGE_URL", "s3://stt-audio?endpoint_url=http://127.0.0.1:9000")
    loaded = runpy.run_path(str(SETTINGS_FILE))
    assert loaded["STORAGES"]["default"]["OPTIONS"]["bucket_name"] == "stt-audio"
    assert loaded["STORAGES"]["staticfiles"]  # untouched
    monkeypatch.setenv("STORAGE_URL", "ftp://stt-audio")
    with pytest.raises(ImproperlyConfigured, match="STORAGE_URL"):
        runpy.run_path(str(SETTINGS_FILE))
    monkeypatch.delenv("STORAGE_URL")
    loaded = runpy.run_path(str(SETTINGS_FILE))
    assert loaded["STORAGES"]["default"]["BACKEND"].endswith("FileSystemStorage")


# --- against a real S3 server ------------------------------------------------------------


@pytest.fixture(scope="module")
def s3():
    with running_s3() as server:
        yield server


@pytest.fixture
def bucket(s3, settings, tmp_path):
    """The default storage is the bucket for this test; DATA_DIR's folders are the test's."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": parse_storage_url("STORAGE_URL", s3.storage_url),
    }
    settings.AUDIO_CACHE_DIR = tmp_path / "cache" / "audio"
    settings.LIVE_SPOOL_DIR = tmp_path / "spool"
    assert storage.object_storage() is not None
    yield s3
    for key in s3.object_keys():
        s3.client.delete_object(Bucket=s3.bucket, Key=key)


def test_ranges_sizes_and_missing_objects(bucket):
    bucket.client.put_object(Bucket=bucket.bucket, Key="a/b.bin", Body=bytes(range(256)) * 4)
    assert storage.size("a/b.bin") == 1024 and storage.exists("a/b.bin")
    assert storage.read_range("a/b.bin", 10, 5) == bytes(range(10, 15))
    assert storage.read_range("a/b.bin", 1020, 100) == bytes(range(252, 256))  # to the end
    assert storage.read_range("a/b.bin", 5000, 10) == b""  # past it, as a file read
    reader = storage.open_range("a/b.bin", 256, 300)
    assert reader.read(200) + reader.read(200) == (bytes(range(256)) * 2)[:300]
    reader.close()
    assert not storage.exists("a/none.bin")
    with pytest.raises(FileNotFoundError):
        storage.size("a/none.bin")
    with pytest.raises(FileNotFoundError):
        storage.read_range("a/none.bin", 0, 10)


@pytest.fixture
def unreachable(settings):
    """The default storage is a bucket on a port where nothing listens, tried once."""
    from botocore.config import Config

    from bench.common import free_port

    url = f"s3://k:s@stt-audio?endpoint_url=http://127.0.0.1:{free_port()}"
    entry = parse_storage_url("STORAGE_URL", url)
    entry["OPTIONS"]["client_config"] = Config(connect_timeout=1, retries={"max_attempts": 0})
    settings.STORAGES = {**settings.STORAGES, "default": entry}


@pytest.mark.django_db(transaction=True)
def test_an_upload_while_the_store_does_not_answer_is_503_and_stores_nothing(unreachable, cast):
    token = Token.objects.create(user=cast.owner)
    api = Client(HTTP_AUTHORIZATION=f"Token {token.key}")
    response = api.post(
        "/api/transcripts/",
        {"file": ContentFile(_wav_bytes(1.0), name="a.wav")},
        headers={"Accept-Language": "en"},
    )
    assert response.status_code == 503, response.content
    assert response["Retry-After"] == "10" and "does not answer" in response.json()["error"]
    openai = api.post(
        "/v1/audio/transcriptions",
        {"file": ContentFile(_wav_bytes(1.0), name="a.wav"), "model": "whisper-1"},
        HTTP_AUTHORIZATION=f"Bearer {token.key}",
    )
    assert openai.status_code == 503, openai.content
    assert openai.json()["error"]["type"] == "server_error" and openai["Retry-After"] == "10"
    assert not Transcript.objects.exists()


def test_an_unreachable_store_is_storage_unavailable(unreachable):
    with pytest.raises(storage.StorageUnavailable, match="unreachable"):
        storage.size("x.wav")
    assert issubclass(storage.StorageUnavailable, OSError)


def test_a_local_copy_for_the_decoder_goes_when_the_job_ends_however_it_ends(bucket, tmp_path):
    from transcription.speech.audio import iter_decode

    wav = io.BytesIO()
    with wave.open(wav, "wb") as out:
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(RATE)
        out.writeframes((np.sin(np.arange(RATE) / 5) * 8000).astype("<i2").tobytes())
    bucket.client.put_object(Bucket=bucket.bucket, Key="audio/x.wav", Body=wav.getvalue())
    cache = storage.cache_dir()
    with storage.decodable("audio/x.wav") as source:
        assert isinstance(source, str) and source.startswith(str(cache))
        assert sum(chunk.size for chunk in iter_decode(source, 0.25)) == RATE
    assert not any(cache.iterdir())
    with pytest.raises(RuntimeError), storage.decodable("audio/x.wav") as source:
        raise RuntimeError("the job failed")
    assert not any(cache.iterdir())
    with pytest.raises(FileNotFoundError), storage.decodable("audio/none.wav"):
        pass
    assert not any(cache.iterdir())


def test_a_worker_empties_its_cache_folder_when_it_starts(settings, tmp_path, monkeypatch):
    settings.AUDIO_CACHE_DIR = tmp_path / "cache"
    monkeypatch.setattr(storage, "_cache_owner", [])
    (tmp_path / "cache" / "stt-gpu0").mkdir(parents=True)
    (tmp_path / "cache" / "stt-gpu0" / "left.wav").write_bytes(b"x")
    (tmp_path / "cache" / "stt-partial-gpu0").mkdir()
    (tmp_path / "cache" / "stt-partial-gpu0" / "busy.wav").write_bytes(b"y")
    storage.claim_cache("stt-gpu0@gpu-host-2")
    assert storage.cache_dir() == tmp_path / "cache" / "stt-gpu0"
    assert not storage.cache_dir().exists()
    # Another worker of the host (same DATA_DIR) keeps its copy while it works.
    assert (tmp_path / "cache" / "stt-partial-gpu0" / "busy.wav").exists()


def test_spools_are_local_files_named_like_the_objects(bucket, settings):
    assert (
        storage.spool_path("live/2026/11/29/a.wav")
        == settings.LIVE_SPOOL_DIR / "live/2026/11/29/a.wav"
    )
    for bad in ("/etc/passwd", "live/../../x.wav"):
        with pytest.raises(ValueError):
            storage.spool_path(bad)


def test_on_the_file_system_the_spool_is_the_stored_file(media):
    assert storage.object_storage() is None
    assert storage.spool_path("live/a.wav") == media / "live" / "a.wav"


# --- uploads, the player, deletion ---------------------------------------------------------


def _wav_bytes(seconds: float) -> bytes:
    wav = io.BytesIO()
    with wave.open(wav, "wb") as out:
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(RATE)
        out.writeframes(bytes(2 * round(seconds * RATE)))
    return wav.getvalue()


@pytest.mark.django_db(transaction=True)
def test_an_upload_is_an_object_served_by_ranges_and_deleted_with_its_transcript(bucket, cast):
    token = Token.objects.create(user=cast.owner)
    api = Client(HTTP_AUTHORIZATION=f"Token {token.key}")
    body = _wav_bytes(2.0)
    response = api.post(
        "/api/transcripts/",
        {"file": ContentFile(body, name="meeting.wav"), "language": "ko"},
    )
    assert response.status_code == 202, response.content
    transcript = Transcript.objects.get(pk=response.json()["id"])
    name = transcript.audio.name
    assert name.startswith("audio/") and bucket.object_keys() == [name]
    assert bucket.read(name) == body

    audio = f"/api/transcripts/{transcript.pk}/audio"
    whole = api.get(audio)
    assert whole.status_code == 200 and b"".join(whole) == body
    part = api.get(audio, HTTP_RANGE="bytes=44-1043")
    assert part.status_code == 206 and part["Content-Range"] == f"bytes 44-1043/{len(body)}"
    assert part["Content-Length"] == "1000" and b"".join(part) == body[44:1044]
    tail = api.get(audio, HTTP_RANGE="bytes=-10")
    assert b"".join(tail) == body[-10:]
    assert api.get(audio, HTTP_RANGE=f"bytes={len(body)}-").status_code == 416
    assert api.head(audio)["Content-Length"] == str(len(body))
    # The transcript page's player, through the same view, to its owner only.
    page = Client()
    page.force_login(cast.owner)
    player = page.get(f"/transcripts/{transcript.pk}/audio", HTTP_RANGE="bytes=0-43")
    assert player.status_code == 206 and b"".join(player) == body[:44]
    stranger = Client()
    stranger.force_login(cast.other)
    assert stranger.get(f"/transcripts/{transcript.pk}/audio").status_code == 404

    # A second upload of the same name is a second object, never the first one replaced.
    again = api.post("/api/transcripts/", {"file": ContentFile(body, name="meeting.wav")})
    assert len(bucket.object_keys()) == 2
    assert api.delete(f"/api/transcripts/{transcript.pk}/").status_code == 204
    assert bucket.object_keys() == [Transcript.objects.get(pk=again.json()["id"]).audio.name]


@pytest.mark.django_db(transaction=True)
def test_the_audio_view_says_503_while_the_store_is_unreachable(cast, unreachable):
    transcript = Transcript.objects.create(
        owner=cast.owner, source=Transcript.Source.UPLOAD, audio="audio/x.wav"
    )
    client = Client()
    client.force_login(cast.owner)
    response = client.get(f"/transcripts/{transcript.pk}/audio")
    assert response.status_code == 503 and response["Retry-After"]


# --- live recordings ----------------------------------------------------------------------


def tone(seconds: float, freq: float = 440.0) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.django_db(transaction=True)
def test_a_live_recording_is_spooled_then_stored_and_resumed_from_the_object(bucket, cast):
    from transcription.live import records, recovery
    from transcription.live.recording import read_span, recorded_s
    from transcription.live.worker import _recorded

    session, name = records.create_transcript(cast.owner, "ko")
    recorder = records.Recorder(session)
    assert recorder.open(name, 0.0) == 0.0
    spool = storage.spool_path(name)
    recorder.append(tone(1.5))
    assert bucket.object_keys() == []  # streaming: on this host only
    # This web process reads its own spool; the page plays it while the stream goes on.
    assert recorded_s(recovery.recording_reader(name)) == pytest.approx(1.5)
    owner = Client()
    owner.force_login(cast.owner)
    playing = owner.get(f"/transcripts/{session}/audio", HTTP_RANGE="bytes=0-43")
    assert playing.status_code == 206 and b"".join(playing)[:4] == b"RIFF"
    # A worker on another host finds nothing yet, and says so instead of hanging.
    assert _recorded(session, 0.5, 1.0) is None

    recorder.close()
    recorder.publish(records.recording_kept(session, name))
    assert bucket.object_keys() == [name] and not spool.exists()
    span = _recorded(session, 0.5, 1.0)  # two ranged reads of the object: header, span
    assert span is not None and np.abs(span - tone(1.5)[RATE // 2 : RATE]).max() < 1e-3
    assert recorded_s(storage.reader(name)) == pytest.approx(1.5)

    # A resume on another web host: it starts from the object, at the timeline's point.
    again = records.Recorder(session)
    assert again.open(name, 2.0) == 2.0
    again.append(tone(0.5, 220.0))
    again.close()
    again.publish(True)
    stored = storage.reader(name)
    assert recorded_s(stored) == pytest.approx(2.5)
    assert not read_span(stored, 1.5, 2.0).any()  # the gap in the timeline is silence
    assert np.abs(read_span(stored, 2.0, 2.5) - tone(0.5, 220.0)).max() < 1e-3
    with wave.open(io.BytesIO(bucket.read(name))) as wav:
        assert (wav.getframerate(), wav.getnframes()) == (RATE, round(2.5 * RATE))

    # Deleted while a stream still holds it: its spool goes, nothing comes back to the bucket.
    last = records.Recorder(session)
    last.open(name, 2.5)
    last.append(tone(0.2))
    Transcript.objects.filter(pk=session).delete()
    assert bucket.object_keys() == []
    last.close()
    last.publish(records.recording_kept(session, name))
    assert bucket.object_keys() == [] and not storage.spool_path(name).exists()


@pytest.mark.django_db(transaction=True)
def test_a_store_that_refuses_the_recording_leaves_the_spool(bucket, cast, settings):
    from transcription.live import records

    session, name = records.create_transcript(cast.owner, "ko")
    recorder = records.Recorder(session)
    recorder.open(name, 0.0)
    recorder.append(tone(0.5))
    recorder.close()
    # The bucket is gone (deleted, renamed in the settings): the store refuses the recording.
    working = settings.STORAGES
    missing = parse_storage_url(
        "STORAGE_URL", bucket.storage_url.replace("@stt-audio", "@stt-gone")
    )
    settings.STORAGES = {**working, "default": missing}
    with pytest.raises(storage.StorageUnavailable, match="bucket of STORAGE_URL does not exist"):
        storage.read_range(name, 0, 44)  # (a HEAD has no body to tell it from a missing key)
    recorder.publish(True)
    assert storage.spool_path(name).exists() and bucket.object_keys() == []
    settings.STORAGES = working
    # A resume here goes on from the spool, and its end stores the whole recording.
    again = records.Recorder(session)
    assert again.open(name, 0.0) == pytest.approx(0.5)
    again.close()
    again.publish(True)
    assert bucket.object_keys() == [name] and len(bucket.read(name)) == 44 + 2 * RATE // 2
    assert not storage.spool_path(name).exists()


def test_credentials_in_the_url_reach_the_store(bucket):
    options = parse_storage_url("STORAGE_URL", bucket.storage_url)["OPTIONS"]
    assert (options["access_key"], options["secret_key"], options["region_name"]) == (
        ACCESS_KEY,
        SECRET_KEY,
        REGION,
    )
