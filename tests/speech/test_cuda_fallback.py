"""A GPU host with the NVIDIA driver and no CUDA toolkit (issue 16): CTranslate2 reports a
device, the settings pick CUDA float16, and cuBLAS cannot be loaded. The worker says so once
and runs Whisper on the CPU (int8) for the rest of its life instead of failing every task.

No GPU is needed: CTranslate2's CUDA is a double that fails as the real one does there
(tests/speech/cuda_double.py)."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest

from tests.speech.cuda_double import CUBLAS_MISSING, CudaWithoutCublas, no_cublas
from transcription.speech import engine, loader
from transcription.speech.audio import decode_audio


@pytest.fixture
def cuda_host(monkeypatch, settings):
    """CTranslate2 sees one GPU; the engine has loaded nothing yet (restored afterwards, so
    the other tests of this process keep their own model)."""
    import ctranslate2

    monkeypatch.setattr(ctranslate2, "get_cuda_device_count", lambda: 1)
    settings.WHISPER_DEVICE = "auto"
    settings.WHISPER_COMPUTE_TYPE = "auto"
    settings.STT_BATCH_SIZE = 0
    for name, value in [("_model", None), ("_pipeline", None), ("_runtime", None)]:
        monkeypatch.setattr(engine, name, value)
    monkeypatch.setattr(engine, "_cuda_error", None)
    monkeypatch.setattr(engine, "_listeners", [])
    preloaded = []
    monkeypatch.setattr(loader, "preload", lambda: preloaded.append(True))
    return SimpleNamespace(preloaded=preloaded)


def whisper_model(device: str, encode=None) -> SimpleNamespace:
    """What the loader touches of a faster-whisper WhisperModel."""
    return SimpleNamespace(
        device=device,
        feature_extractor=lambda audio: np.zeros((80, audio.size // 160), dtype=np.float32),
        encode=encode or (lambda features: features),
    )


def warnings_in(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("fail_at", ["load", "first use"])
def test_cuda_is_tried_first_and_the_worker_falls_back_to_the_cpu_once(
    cuda_host, monkeypatch, caplog, fail_at
):
    created = []

    def create(device, compute_type):
        created.append((device, compute_type, len(cuda_host.preloaded)))
        if device == "cuda" and fail_at == "load":
            raise RuntimeError(CUBLAS_MISSING)
        return whisper_model(device, encode=no_cublas if device == "cuda" else None)

    monkeypatch.setattr(engine, "_create", create)
    reports = []
    engine.on_model_loaded(reports.append)
    assert engine.runtime() == ("cuda", "float16")
    with caplog.at_level(logging.INFO):
        model = engine.get_model()
        # Decided once: later calls neither try CUDA again nor say it again.
        assert engine.get_model() is model
    # CUDA first, with the wheels' libraries preloaded before it; then the CPU, int8.
    assert created == [("cuda", "float16", 1), ("cpu", "int8", 1)]
    assert model.device == "cpu"
    assert engine.runtime() == ("cpu", "int8") and engine.batch_size() == 4
    [warning] = warnings_in(caplog)
    assert CUBLAS_MISSING in warning and "on the CPU (int8)" in warning
    error = f"RuntimeError: {CUBLAS_MISSING}"
    assert engine.runtime_report() == {"device": "cpu", "compute_type": "int8", "cuda_error": error}
    assert reports == [engine.runtime_report()]
    # A listener that comes after the load hears at once.
    late = []
    engine.on_model_loaded(late.append)
    assert late == reports


def test_a_gpu_that_works_keeps_the_model_and_is_probed_once(cuda_host, caplog):
    probed = []
    model = whisper_model("cuda", encode=lambda features: probed.append(features.shape))
    loaded = loader.load(lambda device, compute_type: model, "cuda", "float16")
    assert loaded == loader.Loaded(model, "cuda", "float16", None)
    # The encoder on one 30 s window (a second of silence, padded).
    assert probed == [(80, 3000)] and cuda_host.preloaded == [True]
    assert warnings_in(caplog) == []


def test_the_cpu_is_neither_probed_nor_given_cuda_libraries(cuda_host):
    model = whisper_model("cpu", encode=no_cublas)
    assert loader.load(lambda d, c: model, "cpu", "int8") == loader.Loaded(model, "cpu", "int8")
    assert cuda_host.preloaded == []


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("CUDA failed with error out of memory"),  # the GPU is full, not broken
        RuntimeError("Unable to open file 'model.bin' in model '/nowhere'"),
        ValueError("Requested float16 compute type, but the target device does not support it"),
    ],
)
def test_errors_the_cpu_would_not_cure_are_raised(cuda_host, error):
    def create(device, compute_type):
        raise error

    with pytest.raises(type(error)):
        loader.load(create, "cuda", "float16")


@pytest.mark.parametrize(
    "message",
    [
        CUBLAS_MISSING,
        "cuDNN failed with status CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED",
        "CUDA failed with error no kernel image is available for execution on the device",
        "CUDA driver version is insufficient for CUDA runtime version",
        "libcudnn_ops.so.9: cannot open shared object file: No such file or directory",
    ],
)
def test_errors_naming_cuda_or_its_libraries_send_the_worker_to_the_cpu(message):
    assert loader.is_cuda_error(RuntimeError(message))


@pytest.mark.slow
@pytest.mark.parametrize("fail_at", ["load", "first use"])
def test_a_real_transcription_runs_on_the_cpu_after_cuda_failed(
    cuda_host, monkeypatch, caplog, eval_clip, fail_at
):
    """faster-whisper as it is, on a CTranslate2 whose CUDA has no cuBLAS; the embedded model."""
    import ctranslate2

    double = CudaWithoutCublas(ctranslate2.models.Whisper, fail_at)
    monkeypatch.setattr(ctranslate2.models, "Whisper", double)
    path, _entry = eval_clip("en_jfk_inaugural_11s")
    with open(path, "rb") as handle:
        audio = decode_audio(handle)
    with caplog.at_level(logging.INFO):
        regions = engine.speech_regions(audio)
        text = " ".join(
            segment.text
            for batch in engine.transcribe_regions(audio, regions, "en")
            for segment in batch.segments
        )
    assert double.devices == [("cuda", "float16"), ("cpu", "int8")]
    assert "ask not what your country" in text.lower()
    [warning] = [message for message in warnings_in(caplog) if "CUDA" in message]
    assert CUBLAS_MISSING in warning
    assert engine.runtime_report()["cuda_error"].endswith(CUBLAS_MISSING)
    assert isinstance(engine.get_model().model, double.real)
    assert engine.detect_language(audio, regions) == "en"
