"""A real stt worker on a GPU host without cuBLAS (issue 16): its CTranslate2 reports a GPU and
fails at the first matrix product on it (tests/speech/cuda_double.py, put in place in the
worker's own processes through ``sitecustomize``). The worker says so once, its heartbeat
carries why, and an upload is transcribed on the CPU instead of failing."""

from __future__ import annotations

import os
import time

import pytest

from tests.celery_workers import log_text, running_worker, worker_heartbeats
from tests.conftest import REPO_ROOT
from tests.speech.cuda_double import CUBLAS_MISSING
from tests.workers.fake_gpu import GPU_NAME, fake_nvidia_smi

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SITECUSTOMIZE = """\
# Read by every Python of this test's worker: CTranslate2 as on a GPU host without cuBLAS.
import ctranslate2

from tests.speech.cuda_double import CudaWithoutCublas

ctranslate2.get_cuda_device_count = lambda: 1
ctranslate2.models.Whisper = CudaWithoutCublas(ctranslate2.models.Whisper, "first use")
"""


def heartbeat_of(hostname: str, timeout: float = 60.0) -> dict:
    """The worker's heartbeat once it carries where Whisper runs after the model load."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for record in worker_heartbeats("stt"):
            if record["hostname"] == hostname and record.get("cuda_error"):
                return record
        time.sleep(0.5)
    raise AssertionError(f"no cuda_error in {hostname}'s heartbeat within {timeout} s")


def test_a_worker_whose_cuda_cannot_load_transcribes_on_the_cpu(owner_client, eval_clip, tmp_path):
    fake_nvidia_smi(tmp_path / "bin")
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {
        "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": f"{tmp_path / 'site'}{os.pathsep}{REPO_ROOT}",
        "CUDA_VISIBLE_DEVICES": "0",
        "WHISPER_DEVICE": "auto",
        "WHISPER_COMPUTE_TYPE": "auto",
    }
    with running_worker("stt", extra_env=env, timeout=120) as worker:
        record = heartbeat_of(worker.hostname)
        assert (record["device"], record["compute_type"]) == ("cpu", "int8")
        assert CUBLAS_MISSING in record["cuda_error"]
        assert [gpu["name"] for gpu in record["gpus"]] == [GPU_NAME]
        config = owner_client.get("/api/config").json()
        assert config["cuda_fallback"][worker.hostname] == record["cuda_error"]

        path, _entry = eval_clip("en_jfk_inaugural_11s")
        with open(path, "rb") as handle:
            response = owner_client.post("/api/transcripts/", {"file": handle, "language": "en"})
        assert response.status_code == 202, response.content
        url = response.json()["url"]
        deadline = time.monotonic() + 180
        while (body := owner_client.get(url).json())["status"] not in ("done", "failed"):
            assert time.monotonic() < deadline, body
            time.sleep(0.3)
        log = log_text(worker.log, None)
    assert body["status"] == "done", (body, log[-3000:])
    text = " ".join(segment["text"] for segment in body["segments"])
    assert "ask not what your country" in text.lower()
    # Said once, at the model load; the task itself ran on the CPU without a word about CUDA.
    assert log.count("CUDA cannot run Whisper on this host") == 1, log[-3000:]
