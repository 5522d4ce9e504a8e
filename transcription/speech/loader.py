"""Loading Whisper on the device the settings ask for, or on the CPU when CUDA cannot run here.

On a host with an NVIDIA driver but without CUDA's libraries, CTranslate2 sees the GPU
(``get_cuda_device_count``), the settings pick CUDA, the model even loads onto it, and then
the first matrix product fails: CTranslate2 opens cuBLAS (and, in versions that use it,
cuDNN) only then. So a load proves nothing; the model's encoder is run once on a second of
silence before it is trusted. An error there that names CUDA or its libraries makes the
process load the model on the CPU (int8, the embedded defaults) and say why once, in the log
and through ``Loaded.cuda_error`` (the worker's heartbeat, the status page); the engine keeps
the decision for the life of the process. Any other error is raised as before: a missing
model, or a GPU out of memory, is not cured by the CPU.
"""

from __future__ import annotations

import gc
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from workers.cuda_libs import preload
from workers.gpu import resolve_runtime

log = logging.getLogger(__name__)
SAMPLE_RATE = 16000
# "Library libcublas.so.12 is not found or cannot be loaded", "cuDNN failed with status ...",
# "CUDA failed with error no kernel image is available ...", "CUDA driver version is
# insufficient ...": the GPU cannot run this build here.
CUDA_ERROR = re.compile(r"cuda|cublas|cudnn|libcu|nvrtc", re.IGNORECASE)
# Transient or a matter of size, not of the libraries: the caller retries as for any error.
NOT_FOR_THE_CPU = re.compile(r"out of memory", re.IGNORECASE)
ERROR_CHARS = 300


@dataclass(frozen=True)
class Loaded:
    model: Any
    device: str
    compute_type: str
    # Why the model is on the CPU although CUDA was asked for; None when it is where asked.
    cuda_error: str | None = None


def is_cuda_error(error: BaseException) -> bool:
    text = str(error)
    return bool(CUDA_ERROR.search(text)) and not NOT_FOR_THE_CPU.search(text)


def probe(model: Any) -> None:
    """Run ``model``'s encoder once on a second of silence: its matrix products are where
    CTranslate2 opens cuBLAS (the encoder, not language detection, so English-only models
    are probed alike)."""
    from faster_whisper.audio import pad_or_trim

    model.encode(pad_or_trim(model.feature_extractor(np.zeros(SAMPLE_RATE, dtype=np.float32))))


def load(create: Callable[[str, str], Any], device: str, compute_type: str) -> Loaded:
    """``create(device, compute_type)`` on that device, proved on CUDA by ``probe``; on the
    CPU with int8 instead when CUDA's libraries cannot run there."""
    if device != "cuda":
        return Loaded(create(device, compute_type), device, compute_type)
    preload()
    model = None
    try:
        model = create(device, compute_type)
        probe(model)
        return Loaded(model, device, compute_type)
    except (RuntimeError, OSError) as error:
        if not is_cuda_error(error):
            raise
        reason = f"{type(error).__name__}: {error}".strip()[:ERROR_CHARS]
    # The GPU's copy of the model, if it loaded, is freed before the CPU's is made.
    del model
    gc.collect()
    cpu_device, cpu_type = resolve_runtime("cpu", "auto", 0)
    log.warning(
        "CUDA cannot run Whisper on this host (%s): this worker runs it on the CPU (%s) "
        "instead; README, Troubleshooting, says how to give it the CUDA libraries",
        reason,
        cpu_type,
    )
    return Loaded(create(cpu_device, cpu_type), cpu_device, cpu_type, reason)
