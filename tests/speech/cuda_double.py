"""CTranslate2 as it behaves on a GPU host with the NVIDIA driver and no cuBLAS (issue 16)."""

from __future__ import annotations

from types import SimpleNamespace

# CTranslate2's own words when it cannot open cuBLAS.
CUBLAS_MISSING = "Library libcublas.so.12 is not found or cannot be loaded"


class CudaWithoutCublas:
    """Stands in for ``ctranslate2.models.Whisper``: on the CPU the real one; on CUDA it fails
    at the load (``fail_at="load"``) or, as CTranslate2 does, loads and fails at the first
    matrix product (``"first use"``), where it opens cuBLAS."""

    def __init__(self, real, fail_at: str) -> None:
        self.real, self.fail_at, self.devices = real, fail_at, []

    def __call__(self, model_path, device="cpu", **kwargs):
        self.devices.append((device, kwargs.get("compute_type")))
        if device != "cuda":
            return self.real(model_path, device=device, **kwargs)
        if self.fail_at == "load":
            raise RuntimeError(CUBLAS_MISSING)
        return SimpleNamespace(
            device="cuda",
            device_index=[0],
            is_multilingual=True,
            **dict.fromkeys(("encode", "generate", "detect_language", "align"), no_cublas),
        )


def no_cublas(*_args, **_kwargs):
    raise RuntimeError(CUBLAS_MISSING)
