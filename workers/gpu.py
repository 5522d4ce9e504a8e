"""What accelerators this process can see, for pinning workers and for status pages."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import asdict, dataclass

from sttproject.env import envdevices


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    memory_used_mb: int | None = None
    memory_total_mb: int | None = None
    utilization_pct: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def _int(value: str) -> int | None:
    try:
        return int(float(value))
    except ValueError:
        return None


def list_gpus(timeout: float = 5.0) -> list[GpuInfo]:
    """GPUs as nvidia-smi reports them, restricted to CUDA_VISIBLE_DEVICES; [] without one."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            [
                "nvidia-smi",
                "--query-gpu=index,name,memory.used,memory.total,utilization.gpu",
                "--format=csv,noheader,nounits",
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.strip().splitlines():
        fields = [field.strip() for field in line.split(",")]
        if len(fields) < 5 or _int(fields[0]) is None:
            continue
        gpus.append(
            GpuInfo(int(fields[0]), fields[1], _int(fields[2]), _int(fields[3]), _int(fields[4]))
        )
    visible = visible_devices()
    if visible is not None:
        wanted = {_int(v) for v in visible}
        gpus = [gpu for gpu in gpus if gpu.index in wanted]
    return gpus


def visible_devices() -> list[str] | None:
    """CUDA_VISIBLE_DEVICES as CUDA reads it: None when unset, [] when it hides every GPU."""
    return envdevices("CUDA_VISIBLE_DEVICES", empty_is_unset=False)


def cuda_device_count() -> int:
    """How many CUDA devices CTranslate2 can use here (0 on a machine without one)."""
    try:
        import ctranslate2

        return ctranslate2.get_cuda_device_count()
    except Exception:  # noqa: BLE001 - a broken CUDA install means "no GPU" for us
        return 0


def resolve_runtime(device: str, compute_type: str, cuda_devices: int) -> tuple[str, str]:
    """Turn the WHISPER_DEVICE / WHISPER_COMPUTE_TYPE settings into what CTranslate2 gets.

    ``auto`` picks CUDA when a device is visible; the compute type follows the
    device: float16 on a GPU, int8 on the CPU (the fastest exact-enough choices).
    """
    if device == "auto":
        device = "cuda" if cuda_devices > 0 else "cpu"
    if compute_type == "auto":
        compute_type = "float16" if device == "cuda" else "int8"
    return device, compute_type
