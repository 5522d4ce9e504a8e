"""CUDA's libraries for CTranslate2 on a GPU host that has the NVIDIA driver and no CUDA toolkit.

CTranslate2's wheel links CUDA's runtime statically and opens the libraries it needs beyond
that (``libcublas.so.12`` for the 4.x wheel pinned here; cuDNN in the versions that use it)
only at the first matrix product. A host with just the driver has none of them, so
faster-whisper documents installing them from PyPI (``nvidia-cublas-cu12``,
``nvidia-cudnn-cu12``) and pointing the dynamic loader at the wheels' ``lib`` folders.

- ``python -m workers.cuda_libs install`` (run by ``make install``, so by ``./start_system.sh``)
  installs the ``gpu`` extra's pinned wheels when ``nvidia-smi`` lists a GPU and they are not
  there yet; ``--dry-run`` prints the pip command instead of running it.
- Worker processes make them findable by loading them before CTranslate2 asks for them
  (``preload``): once a library is loaded, the loader answers a later ``dlopen`` of its soname
  with it. ``LD_LIBRARY_PATH`` is read by the loader only when a process starts, so setting it
  inside a worker does nothing, and a launcher setting it reaches only the processes that
  launcher starts; the preload works however the worker was started (``start_system.sh``, a
  hand-run ``celery worker``, systemd). ``python -m workers.cuda_libs path`` prints an
  ``LD_LIBRARY_PATH`` with the folders, for other programs that want the same libraries.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.metadata
import logging
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from sttproject.env import envchoice, envdevices

log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parent.parent
# The folders under site-packages/nvidia/ that hold libraries CTranslate2 may open.
PACKAGE_FOLDERS = ("cublas", "cudnn")
# Which library each wheel of the gpu extra provides: a host whose loader already finds it (a
# CUDA toolkit in the loader's cache) needs no wheel. tests/workers/test_cuda_libs.py checks
# this against the library names in the installed CTranslate2.
SONAMES = {"nvidia-cublas-cu12": "libcublas.so.12", "nvidia-cudnn-cu12": "libcudnn.so.9"}
# Loaded by nobody who asks for it: NVBLAS replaces the CPU's BLAS for every library once global.
NOT_PRELOADED = ("libnvblas",)

_preloaded: list[str] = []


def site_dirs() -> list[Path]:
    """Where this interpreter's packages are installed (the virtualenv's site-packages)."""
    found = [*site.getsitepackages(), sysconfig.get_paths()["purelib"]]
    found.append(sysconfig.get_paths()["platlib"])
    unique: list[Path] = []
    for path in map(Path, found):
        if path not in unique:
            unique.append(path)
    return unique


def library_dirs(sites: Iterable[Path] | None = None) -> list[Path]:
    """The ``nvidia/<package>/lib`` folders of the CUDA wheels installed under ``sites``."""
    dirs = []
    for base in site_dirs() if sites is None else sites:
        for name in PACKAGE_FOLDERS:
            lib = Path(base) / "nvidia" / name / "lib"
            if lib.is_dir() and any(lib.glob("lib*.so*")) and lib not in dirs:
                dirs.append(lib)
    return dirs


def ld_library_path(current: str | None, sites: Iterable[Path] | None = None) -> str:
    """``LD_LIBRARY_PATH`` with the wheels' folders first and ``current``'s entries after them."""
    entries = [str(path) for path in library_dirs(sites)]
    for entry in (current or "").split(os.pathsep):
        if entry and entry not in entries:
            entries.append(entry)
    return os.pathsep.join(entries)


def _libraries(lib: Path) -> list[Path]:
    return sorted(
        path
        for path in lib.glob("lib*.so.*")
        if not path.name.startswith(NOT_PRELOADED) and not path.is_dir()
    )


def preload(
    sites: Iterable[Path] | None = None, load: Callable[[str], object] | None = None
) -> list[str]:
    """Load the CUDA wheels' libraries into this process, globally, and name those loaded.

    Done before CTranslate2 first needs cuBLAS, its ``dlopen("libcublas.so.12")`` finds the
    library already loaded by that soname. A library whose dependency is not loaded yet
    (libcublas needs libcublasLt) fails and is tried again after the others. Without the
    wheels this loads nothing: a CUDA toolkit on the loader's path serves as before.
    """
    if load is None:

        def load(path: str) -> object:
            return ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)

    pending = [path for lib in library_dirs(sites) for path in _libraries(lib)]
    pending = [path for path in pending if path.name not in _preloaded]
    errors: dict[str, str] = {}
    while pending:
        failed = []
        for path in pending:
            try:
                load(str(path))
            except OSError as error:
                failed.append(path)
                errors[path.name] = str(error)
            else:
                _preloaded.append(path.name)
        if len(failed) == len(pending):
            break
        pending = failed
    for path in pending:
        log.warning("could not preload %s: %s", path, errors[path.name])
    return list(_preloaded)


def gpu_present(environ: Mapping[str, str] | None = None, timeout: float = 10.0) -> bool:
    """Whether ``nvidia-smi`` (on PATH) lists a GPU: the driver is there and sees one."""
    environ = os.environ if environ is None else environ
    smi = shutil.which("nvidia-smi", path=environ.get("PATH"))
    if smi is None:
        return False
    try:
        out = subprocess.run(
            [smi, "-L"], capture_output=True, text=True, timeout=timeout, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return any(line.startswith("GPU ") for line in out.splitlines())


def gpu_requirements(pyproject: Path = REPO_ROOT / "pyproject.toml") -> list[str]:
    """The ``gpu`` extra of pyproject.toml: the CUDA wheels, each pinned exactly."""
    with pyproject.open("rb") as file:
        project = tomllib.load(file)["project"]
    return list(project.get("optional-dependencies", {}).get("gpu", []))


def _installed(requirement: str) -> bool:
    name, _, version = requirement.partition("==")
    try:
        return importlib.metadata.version(name.strip()) == version.strip()
    except importlib.metadata.PackageNotFoundError:
        return False


def _loadable(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class Plan:
    """What the install step does: ``command`` (pip) to run, or None, and why."""

    reason: str
    command: list[str] | None = None


def install_plan(
    environ: Mapping[str, str] | None = None,
    *,
    python: str = sys.executable,
    requirements: list[str] | None = None,
    installed: Callable[[str], bool] = _installed,
    loadable: Callable[[str], bool] = _loadable,
) -> Plan:
    """Whether this host needs the CUDA wheels, and the pip command that installs them."""
    # Parsed as the settings and the launcher parse them, so a typo stops here too.
    if envchoice("WHISPER_DEVICE", "auto", ("auto", "cpu", "cuda"), environ=environ) == "cpu":
        return Plan("WHISPER_DEVICE=cpu: Whisper runs on the CPU")
    if envdevices("STT_GPUS", environ=environ) == []:
        return Plan("STT_GPUS=none: no stt worker runs on a GPU")
    if not gpu_present(environ):
        return Plan("nvidia-smi lists no GPU")
    wanted = gpu_requirements() if requirements is None else requirements
    missing = []
    for requirement in wanted:
        soname = SONAMES.get(requirement.partition("==")[0].strip())
        if not installed(requirement) and not (soname and loadable(soname)):
            missing.append(requirement)
    if not missing:
        return Plan("a GPU is present and CUDA's libraries are installed")
    command = [python, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    command += ["-c", str(REPO_ROOT / "constraints.txt"), *missing]
    return Plan("a GPU is present and CUDA's libraries are missing", command)


def install(
    environ: Mapping[str, str] | None = None,
    *,
    dry_run: bool = False,
    run: Callable[..., object] = subprocess.run,
    out: Callable[[str], None] = print,
    **plan_options,
) -> Plan:
    """Install the CUDA wheels when this host needs them (``install_plan``); with ``dry_run``
    only say what would run. A failed install is reported, not raised: the workers then run
    Whisper on the CPU and say why (README, Troubleshooting)."""
    plan = install_plan(environ, **plan_options)
    if plan.command is None:
        return plan
    shown = " ".join(plan.command)
    if dry_run:
        out(f"CUDA libraries: {plan.reason}; would run: {shown}")
        return plan
    out(f"CUDA libraries: {plan.reason}; installing: {shown}")
    try:
        run(plan.command, check=True, cwd=REPO_ROOT)
    except (OSError, subprocess.CalledProcessError) as error:
        out(
            f"CUDA libraries could not be installed ({error}): Whisper runs on the CPU until "
            "they are (README, Troubleshooting)"
        )
    return plan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.cuda_libs", description=__doc__)
    sub = parser.add_subparsers(dest="action", required=True)
    install_parser = sub.add_parser("install", help="install the CUDA wheels if a GPU needs them")
    install_parser.add_argument("--dry-run", action="store_true", help="print the pip command")
    sub.add_parser("path", help="print LD_LIBRARY_PATH with the CUDA wheels' folders")
    args = parser.parse_args(argv)
    if args.action == "install":
        try:
            install(dry_run=args.dry_run)
        except ImproperlyConfigured as error:
            # One line naming the variable, as the launcher says it.
            raise SystemExit(f"ImproperlyConfigured: {error}") from None
    else:
        print(ld_library_path(os.environ.get("LD_LIBRARY_PATH")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
