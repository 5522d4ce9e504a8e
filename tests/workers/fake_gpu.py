"""A stand-in ``nvidia-smi`` for tests of a GPU host on a machine without one."""

from __future__ import annotations

from pathlib import Path

GPU_NAME = "NVIDIA H200"


def fake_nvidia_smi(folder: Path) -> Path:
    """Write an ``nvidia-smi`` into ``folder`` that lists one GPU, as ``-L`` and as the
    ``--query-gpu`` CSV that workers/gpu.py reads; put ``folder`` first on PATH to use it."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "nvidia-smi"
    script.write_text(
        "#!/bin/sh\n"
        'case "$*" in\n'
        f'  *--query-gpu*) echo "0, {GPU_NAME}, 1024, 143771, 3" ;;\n'
        f'  *-L*) echo "GPU 0: {GPU_NAME} (UUID: GPU-0f2c4e6a-1b3d-4f5a-8c9e-0a1b2c3d4e5f)" ;;\n'
        "  *) exit 2 ;;\n"
        "esac\n"
    )
    script.chmod(0o755)
    return script
