"""Issue 16: a GPU host needs only URLs. The web process and an stt worker run as two "hosts"
on this machine: separate DATA_DIRs, no path in common, only PostgreSQL, Redis and a real
S3-compatible server on loopback (moto's) between them. An upload over the REST API and a
live session over /ws are transcribed, their audio is objects in the bucket, the player's
byte ranges come from the bucket, deleting the transcripts deletes the objects, and neither
host keeps a file of them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from rest_framework.authtoken.models import Token

from tests.audio_files import write_wav
from tests.celery_workers import running_worker
from tests.conftest import session_cookie_header
from tests.factories import make_user
from tests.live.test_readme_client import readme_client
from tests.object_storage import running_s3
from tests.polling import wait_for
from tests.servers import running_web_process
from transcription.models import Transcript
from transcription.speech.audio import decode_audio

CLIP = "ko_zeroth_104_003_0253"
GPU_HOST = "gpu-host-b"


@pytest.mark.django_db
def test_health_and_the_status_page_list_workers_by_host(client, cast, settings):
    """Each heartbeat names its host (WORKER_HOST, else the machine's name): /api/health
    groups each queue's workers by it, /status/ shows it beside each worker."""
    import uuid

    import redis

    from workers.heartbeat import KEY_PREFIX, publish, worker_record

    tag = uuid.uuid4().hex[:6]
    central, gpu = f"central-{tag}", f"gpu-{tag}"
    beats = [
        (central, f"stt-cpu@{central}", ["stt_live", "stt"]),
        (central, f"keywords@{central}", ["keywords"]),
        (gpu, f"stt-gpu0@{gpu}", ["stt_live", "stt"]),
        (gpu, f"stt-partial-gpu0@{gpu}", ["stt_partial"]),
    ]
    store = redis.Redis.from_url(settings.REDIS_URL)
    try:
        for host, name, queues in beats:
            settings.WORKER_HOST = host
            publish(store, worker_record(name, queues), ttl_s=60)
        checks = client.get("/api/health").json()["checks"]
        stt = checks["queue:stt"]["hosts"]
        assert stt[central] == [f"stt-cpu@{central}"] and stt[gpu] == [f"stt-gpu0@{gpu}"]
        assert checks["queue:stt_partial"]["hosts"][gpu] == [f"stt-partial-gpu0@{gpu}"]
        client.force_login(cast.staff)
        page = client.get("/status/", headers={"Accept-Language": "en"}).content.decode()
        assert "<th>Host</th>" in page
        for host, name, _queues in beats:
            assert f"<td>{host}</td><td>{name}</td>" in page
        # By host, then by name: a GPU host's workers side by side.
        rows = [page.index(f"<td>{name}</td>") for _host, name, _queues in sorted(beats)]
        assert rows == sorted(rows)
    finally:
        store.delete(*(KEY_PREFIX + name for _host, name, _queues in beats))
        store.close()


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def wait_done(transcript_id: str, timeout: float = 180.0) -> Transcript:
    def done():
        row = Transcript.objects.get(pk=transcript_id)
        assert row.status != Transcript.Status.FAILED, row.error
        return row if row.status == Transcript.Status.DONE else None

    return wait_for(done, timeout, f"transcript {transcript_id} done")


@pytest.mark.slow
def test_a_worker_host_needs_only_urls(transactional_db, tmp_path, eval_clip):
    web_data, gpu_data = tmp_path / "web-host", tmp_path / "gpu-host"
    staff = make_user("operator", staff=True)
    token = Token.objects.create(user=staff).key
    clip, _entry = eval_clip(CLIP)
    wav = write_wav(tmp_path / "talk.wav", decode_audio(clip))
    client_script = tmp_path / "ws_client.py"
    client_script.write_text(readme_client())

    with running_s3("stt-two-hosts") as s3:
        web_env = {"DATA_DIR": str(web_data), "STORAGE_URL": s3.storage_url}
        gpu_env = {
            "DATA_DIR": str(gpu_data),
            "STORAGE_URL": s3.storage_url,
            "WORKER_HOST": GPU_HOST,
            # The host's own copy of the model (here the checkout's: read-only, no data).
            "WHISPER_MODEL": settings.WHISPER_MODEL,
            "KEYWORD_BACKEND": "embedded",
        }
        with (
            running_worker("stt", extra_env=gpu_env) as stt,
            running_worker("keywords", extra_env=gpu_env),
            running_web_process(web_env) as (url, web),
        ):
            api = httpx.Client(
                base_url=url, headers={"Authorization": f"Token {token}"}, timeout=60
            )
            # --- an upload over the REST API ---------------------------------------------
            with open(clip, "rb") as handle:
                response = api.post(
                    "/api/transcripts/",
                    files={"file": (clip.name, handle, "audio/flac")},
                    data={"language": "ko"},
                )
            assert response.status_code == 202, response.text
            upload = wait_done(response.json()["id"])
            assert upload.segments.exists()
            assert s3.object_keys() == [upload.audio.name]
            assert s3.read(upload.audio.name) == clip.read_bytes()

            # --- a live session over /ws, with the API token ---------------------------
            env = {"PATH": os.environ["PATH"], "PYTHONIOENCODING": "utf-8", "STT_TOKEN": token}
            command = [sys.executable, str(client_script), str(wav), "--url", f"ws{url[4:]}/ws"]
            result = subprocess.run(
                [*command, "--fast"],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                encoding="utf-8",
                timeout=300,
            )
            assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
            session = result.stdout.splitlines()[0].split()[1]
            live = wait_done(session)
            assert live.segments.exists()
            name = live.audio.name
            assert name.startswith("live/") and name in s3.object_keys()
            recording = s3.read(name)
            # The whole stream, 16 kHz mono 16-bit: 44 header bytes, two per sample.
            assert abs((len(recording) - 44) / 2 / 16000 - decode_audio(clip).size / 16000) < 1.0

            # The transcript page's player seeks: a Range from the bucket through the web.
            cookie = dict([session_cookie_header(staff)])[b"cookie"].decode()
            page = httpx.Client(base_url=url, headers={"Cookie": cookie}, timeout=60)
            part = page.get(f"/transcripts/{session}/audio", headers={"Range": "bytes=1000-8999"})
            assert part.status_code == 206, part.text
            assert part.headers["Content-Range"] == f"bytes 1000-8999/{len(recording)}"
            assert part.content == recording[1000:9000]
            assert page.head(f"/transcripts/{session}/audio").headers["Accept-Ranges"] == "bytes"

            # --- workers listed by host ------------------------------------------------
            health = api.get("/api/health").json()
            hosts = health["checks"]["queue:stt"]["hosts"]
            assert stt.hostname in hosts[GPU_HOST], health
            status = page.get("/status/")
            assert status.status_code == 200 and f"<td>{GPU_HOST}</td>" in status.text

            # --- deleting the transcripts deletes their objects ----------------------------
            for transcript in (upload, live):
                assert api.delete(f"/api/transcripts/{transcript.pk}/").status_code == 204
            wait_for(lambda: s3.object_keys() == [], 30, "the bucket emptied")
            assert web.poll() is None

        # Neither host kept a file of the audio: the web's spool went into the bucket, the
        # worker's local copy (in a folder of its own name) went when its job ended.
        assert files_under(gpu_data / "cache") == []
        copies = gpu_data / "cache" / "audio"
        assert [p.name for p in copies.iterdir()] == [stt.hostname.partition("@")[0]]
        assert files_under(web_data / "spool") == [] and (web_data / "spool" / "live").is_dir()
        assert not (web_data / "media").exists() and not (gpu_data / "media").exists()
