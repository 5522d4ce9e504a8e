"""``/metrics`` end to end: the web and real workers share a host's metrics folder as the
launcher sets it up (emptied, then named in every process's PROMETHEUS_MULTIPROC_DIR); an
operator's token scrapes it before and after an upload and a live session, each sent with
a user's API token as a program would, and the counts moved. The keyword worker talks to
the test LLM server, which refuses its first request: an LLM failure, answered by the
embedded extractor. The host's exporter, on its own port, serves the same folder."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.authtoken.models import Token
from websockets.asyncio.client import connect

from bench.common import free_port
from tests.celery_workers import running_worker
from tests.conftest import REPO_ROOT
from tests.factories import make_user
from tests.llm_server import FakeLlmServer, Reply
from tests.polling import wait_for
from tests.servers import running_web
from transcription.speech.audio import decode_audio
from workers.launch import prepare_metrics_dir

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
CLIP = "ko_zeroth_104_003_0253"
MODEL = "Qwen/Qwen2.5-7B-Instruct"
FRAME = 1600 * 2  # 100 ms of 16 kHz 16-bit audio


class Scrape:
    def __init__(self, text: str) -> None:
        self.samples = [
            sample for family in text_string_to_metric_families(text) for sample in family.samples
        ]

    def value(self, name: str, **labels: str) -> float:
        """The sum of ``name``'s samples whose labels include ``labels`` (0 when none)."""
        return sum(
            s.value
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )


def scrape(url: str, token: str) -> Scrape:
    response = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return Scrape(response.text)


def upload(url: str, token: str, path) -> dict:
    with open(path, "rb") as handle:
        response = httpx.post(
            f"{url}/api/transcripts/",
            headers={"Authorization": f"Token {token}"},
            files={"file": (path.name, handle)},
            timeout=60,
        )
    assert response.status_code == 202, response.text  # accepted, queued
    detail_url = f"{url}/api/transcripts/{response.json()['id']}/"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        detail = httpx.get(detail_url, headers={"Authorization": f"Token {token}"}).json()
        assert detail["status"] != "failed", detail
        if detail["status"] == "done":
            return detail
        time.sleep(0.5)
    raise AssertionError(f"the upload did not finish: {detail}")


async def live_session(url: str, token: str, pcm: bytes, while_open) -> list[dict]:
    """Stream ``pcm`` through /ws with the token; ``while_open()`` runs (in a thread) once the
    session is ready. Returns the events up to ``stopped``."""
    headers = {"Authorization": f"Token {token}"}
    events: list[dict] = []
    async with connect(f"ws{url[4:]}/ws", additional_headers=headers) as ws:
        start = {"type": "start", "language": "ko", "sample_rate": 16000, "encoding": "pcm_s16le"}
        await ws.send(json.dumps(start))
        async for message in ws:
            event = json.loads(message)
            events.append(event)
            if event["type"] == "ready":
                await asyncio.to_thread(while_open)
                for i in range(0, len(pcm), FRAME):
                    await ws.send(pcm[i : i + FRAME])
                await ws.send(json.dumps({"type": "stop"}))
            elif event["type"] == "stopped":
                return events
    raise AssertionError(f"the socket closed before stopped: {events}")


def test_metrics_count_an_upload_and_a_live_session(eval_clip, tmp_path):
    folder = tmp_path / "metrics"
    prepare_metrics_dir(folder)
    host = {"PROMETHEUS_MULTIPROC_DIR": str(folder)}
    operator = Token.objects.create(user=make_user("operator", staff=True)).key
    program = Token.objects.create(user=make_user("program")).key
    path, _entry = eval_clip(CLIP)
    samples = decode_audio(path)
    pcm = (samples.clip(-1, 1) * 32767).astype("<i2").tobytes()

    with FakeLlmServer(MODEL) as llm:
        llm.script(Reply.error(400))  # not worth a retry: a failure at once
        llm.answer_with(lambda _text: Reply.keywords([]))
        # The upload and the live session are summarised too: answered, so that the one
        # failure counted below is the refused keyword request.
        llm.answer_summaries_with(lambda _text: Reply.summary("회의 내용을 요약했습니다."))
        llm_env = {"KEYWORD_BACKEND": "vllm", "VLLM_API_URL": llm.url, "VLLM_MODEL": MODEL}
        with (
            running_worker("stt", extra_env=host),
            running_worker("keywords", extra_env={**host, **llm_env}),
            running_web({**host, "LIVE_KEEP_AUDIO": "false"}) as url,
        ):
            before = scrape(url, operator)
            assert before.value("stt_broker_up") == 1
            assert before.value("stt_workers_online", queue="stt") >= 1
            assert before.value("stt_workers_online", queue="keywords") >= 1

            upload(url, program, path)
            # Its keywords come after it is done (and before the live session, so that the
            # LLM's refusal is theirs).
            task = "keywords.tasks.extract_transcript_keywords"
            wait_for(
                lambda: (
                    scrape(url, operator).value("stt_tasks_total", task=task)
                    > before.value("stt_tasks_total", task=task)
                ),
                timeout=120,
                what="keyword tasks counted",
                interval=0.2,
            )
            during: list[Scrape] = []
            events = asyncio.run(
                live_session(url, program, pcm, lambda: during.append(scrape(url, operator)))
            )
            assert any(e["type"] == "final" and e["text"] for e in events), events
            # The web process counts the socket down as it closes, after the client's side.
            wait_for(
                lambda: scrape(url, operator).value("stt_live_sessions_active") == 0,
                timeout=15,
                what="no live session active",
                interval=0.2,
            )
            after = scrape(url, operator)
            exporter = exported(folder)

    def moved(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    # The upload, as accepted by the web.
    assert moved("stt_uploads_total") == 1
    assert moved("stt_upload_bytes_total") == path.stat().st_size
    # Tasks by outcome, recorded by the workers' pool processes.
    for task in (
        "transcription.tasks.transcribe",
        "transcription.tasks.transcribe_utterance",
        "keywords.tasks.extract_transcript_keywords",
        "keywords.tasks.extract_segment_keywords",
    ):
        assert moved("stt_tasks_total", task=task, outcome="success") >= 1, task
        assert moved("stt_task_duration_seconds_count", task=task) >= 1, task
    assert moved("stt_transcriptions_total", status="done") == 1
    for queue in ("stt", "stt_live", "keywords"):
        assert moved("stt_queue_wait_seconds_count", queue=queue) >= 1, queue
    # Real-time factor of the upload and of the live finals.
    for kind in ("upload", "live_final"):
        assert moved("stt_transcription_real_time_factor_count", kind=kind) >= 1, kind
        assert moved("stt_transcribed_audio_seconds_total", kind=kind) > 0, kind
    upload_audio = moved("stt_transcribed_audio_seconds_total", kind="upload")
    assert upload_audio == pytest.approx(len(samples) / 16000, abs=0.5)
    # The live session: counted while open, its finals timed in the web process.
    assert during[0].value("stt_live_sessions_active") == 1
    assert moved("stt_live_sessions_total") == 1
    assert moved("stt_live_final_latency_seconds_count") >= 1
    # The LLM: the refused first request, the rest answered; the embedded extractor stood in.
    assert moved("stt_llm_calls_total", backend="vllm", outcome="failure") == 1
    assert moved("stt_llm_calls_total", backend="vllm", outcome="success") >= 1
    assert moved("stt_llm_calls_total", backend="embedded", outcome="success") >= 1
    assert llm.chat_calls >= 2
    # The exporter serves the same processes on its own port, with the platform's gauges.
    for name in ("stt_uploads_total", "stt_upload_bytes_total", "stt_live_sessions_total"):
        assert exporter.value(name) == after.value(name), name
    # (A task may still end meanwhile: the session's end, finish_live.)
    assert exporter.value("stt_tasks_total") >= after.value("stt_tasks_total")
    assert exporter.value("stt_broker_up") == 1


def exported(folder) -> Scrape:
    """A scrape of ``python -m workers.metrics_exporter --platform`` on ``folder``."""
    port = free_port()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder), "METRICS_PORT": str(port)}
    process = subprocess.Popen(
        [sys.executable, "-m", "workers.metrics_exporter", "--platform"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, "the exporter exited"
            try:
                return Scrape(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the exporter did not answer"
                time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
