"""CUDA's libraries on a GPU host without the CUDA toolkit (issue 16): the install step brings
the gpu extra's wheels when nvidia-smi lists a GPU, and workers find them in site-packages.
Nothing here installs anything or needs a GPU: nvidia-smi is a script, the wheels a tree of
empty files."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.workers.fake_gpu import fake_nvidia_smi
from workers import cuda_libs

PIN = "nvidia-cublas-cu12==12.8.4.1"


def wheels(site: Path, *, cudnn: bool = False) -> Path:
    """A site-packages with the files the CUDA wheels install (contents do not matter)."""
    files = [
        "nvidia/cublas/lib/libcublas.so.12",
        "nvidia/cublas/lib/libcublasLt.so.12",
        "nvidia/cublas/lib/libnvblas.so.12",
        "nvidia/cublas/include/cublas.h",
        # CUDA's runtime comes in CTranslate2 (linked statically): not a folder it needs.
        "nvidia/cuda_runtime/lib/libcudart.so.12",
    ]
    if cudnn:
        files += ["nvidia/cudnn/lib/libcudnn.so.9", "nvidia/cudnn/lib/libcudnn_ops.so.9"]
    for name in files:
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_bytes(b"")
    return site


def test_the_library_folders_are_the_wheels_lib_folders(tmp_path):
    site = wheels(tmp_path / "site-packages", cudnn=True)
    empty = tmp_path / "other-site"
    (empty / "nvidia" / "cublas" / "lib").mkdir(parents=True)  # no library in it
    assert cuda_libs.library_dirs([site, empty]) == [
        site / "nvidia" / "cublas" / "lib",
        site / "nvidia" / "cudnn" / "lib",
    ]
    assert cuda_libs.library_dirs([empty]) == []


def test_ld_library_path_puts_the_wheels_first_and_keeps_what_was_there(tmp_path):
    site = wheels(tmp_path / "site-packages")
    lib = str(site / "nvidia" / "cublas" / "lib")
    assert cuda_libs.ld_library_path(None, [site]) == lib
    assert cuda_libs.ld_library_path(f"/opt/x::{lib}:/usr/local/lib", [site]) == os.pathsep.join(
        [lib, "/opt/x", "/usr/local/lib"]
    )
    assert cuda_libs.ld_library_path("/opt/x", [tmp_path / "nothing"]) == "/opt/x"


def test_preload_loads_each_library_after_what_it_needs(tmp_path, monkeypatch):
    monkeypatch.setattr(cuda_libs, "_preloaded", [])
    site = wheels(tmp_path / "site-packages", cudnn=True)
    loaded: list[str] = []

    def load(path: str) -> None:
        name = Path(path).name
        # libcublas needs libcublasLt, which sorts after it: the first try fails.
        if name == "libcublas.so.12" and "libcublasLt.so.12" not in loaded:
            raise OSError("libcublasLt.so.12: cannot open shared object file")
        loaded.append(name)

    assert set(cuda_libs.preload([site], load)) == {
        "libcublas.so.12",
        "libcublasLt.so.12",
        "libcudnn.so.9",
        "libcudnn_ops.so.9",
    }
    assert loaded.index("libcublasLt.so.12") < loaded.index("libcublas.so.12")
    assert "libnvblas.so.12" not in loaded  # it would take over the CPU's BLAS
    # Once loaded, not again.
    assert cuda_libs.preload([site], load) and loaded.count("libcublas.so.12") == 1


def test_a_library_that_cannot_load_is_reported_not_raised(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(cuda_libs, "_preloaded", [])
    site = wheels(tmp_path / "site-packages")  # empty files: not ELF, the real loader refuses
    assert cuda_libs.preload([site]) == []
    assert "could not preload" in caplog.text and "libcublas.so.12" in caplog.text
    assert cuda_libs.preload([tmp_path / "nothing"]) == []


def gpu_host(tmp_path: Path, **env: str) -> dict[str, str]:
    """An environment whose PATH has an nvidia-smi that lists one GPU, and nothing else."""
    fake_nvidia_smi(tmp_path / "bin")
    return {"PATH": str(tmp_path / "bin"), **env}


def plan(environ, *, installed=False, loadable=False):
    return cuda_libs.install_plan(
        environ,
        python="/venv/bin/python",
        requirements=[PIN],
        installed=lambda requirement: installed,
        loadable=lambda soname: loadable,
    )


def test_a_gpu_without_the_libraries_gets_the_pinned_wheels(tmp_path):
    assert cuda_libs.gpu_present(gpu_host(tmp_path))
    found = plan(gpu_host(tmp_path))
    assert found.command == [
        "/venv/bin/python",
        *("-m", "pip", "install", "--disable-pip-version-check", "-q"),
        *("-c", str(REPO_ROOT / "constraints.txt"), PIN),
    ]


@pytest.mark.parametrize(
    ("env", "installed", "loadable", "reason"),
    [
        ({}, True, False, "installed"),  # a second run
        ({}, False, True, "installed"),  # a CUDA toolkit the loader finds
        ({"WHISPER_DEVICE": "cpu"}, False, False, "WHISPER_DEVICE=cpu"),
        ({"STT_GPUS": "none"}, False, False, "STT_GPUS=none"),
    ],
)
def test_nothing_is_installed_when_nothing_is_missing_or_wanted(
    tmp_path, env, installed, loadable, reason
):
    found = plan(gpu_host(tmp_path, **env), installed=installed, loadable=loadable)
    assert found.command is None and reason in found.reason


def test_without_a_gpu_nothing_is_installed(tmp_path):
    (tmp_path / "bin").mkdir()
    assert plan({"PATH": str(tmp_path / "bin")}).reason == "nvidia-smi lists no GPU"
    # A driver that lists nothing (or fails) is no GPU either.
    smi = tmp_path / "bin" / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'No devices were found'\nexit 6\n")
    smi.chmod(0o755)
    assert plan({"PATH": str(tmp_path / "bin")}).command is None


def test_install_runs_pip_and_survives_its_failure(tmp_path):
    ran, said = [], []

    def run(command, **kwargs):
        ran.append((command, kwargs))
        raise subprocess.CalledProcessError(1, command)

    options = {"requirements": [PIN], "installed": lambda r: False, "loadable": lambda s: False}
    found = cuda_libs.install(gpu_host(tmp_path), run=run, out=said.append, **options)
    assert ran == [(found.command, {"check": True, "cwd": cuda_libs.REPO_ROOT})]
    assert "installing" in said[0] and PIN in said[0]
    assert "could not be installed" in said[1] and "CPU" in said[1]
    said.clear()
    cuda_libs.install(gpu_host(tmp_path), dry_run=True, run=run, out=said.append, **options)
    assert len(ran) == 1 and said[0].startswith("CUDA libraries: a GPU is present")


def _install_dry_run(env: dict[str, str]) -> subprocess.CompletedProcess:
    """The install step as `make install` runs it, but --dry-run: nothing is installed."""
    return subprocess.run(
        [sys.executable, "-m", "workers.cuda_libs", "install", "--dry-run"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_the_install_step_dry_run_names_the_pip_command(tmp_path):
    if cuda_libs._installed(PIN) or cuda_libs._loadable("libcublas.so.12"):
        pytest.skip("this machine has cuBLAS already")
    env = {**os.environ, **gpu_host(tmp_path)}
    done = _install_dry_run(env)
    assert "would run:" in done.stdout and "-m pip install" in done.stdout
    assert done.stdout.rstrip().endswith(PIN), done.stdout
    # Without nvidia-smi it says nothing and does nothing.
    (tmp_path / "empty").mkdir()
    env["PATH"] = str(tmp_path / "empty")
    quiet = _install_dry_run(env)
    assert quiet.stdout == ""


def test_the_gpu_extra_is_pinned_and_matches_the_image():
    requirements = cuda_libs.gpu_requirements()
    assert requirements == [PIN]
    assert all(re.fullmatch(r"[\w-]+==[\d.]+", requirement) for requirement in requirements)
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert f"ARG CUBLAS_VERSION={PIN.split('==')[1]}" in dockerfile


def test_the_gpu_extra_brings_every_cuda_library_ctranslate2_opens():
    import ctranslate2

    libs = sorted((Path(ctranslate2.__file__).parent.parent / "ctranslate2.libs").glob("libct*"))
    if not libs:
        pytest.skip("no bundled libctranslate2 to read")
    names = set(re.findall(rb"lib(?:cublas|cudnn)\w*\.so\.\d+", libs[0].read_bytes()))
    assert names, "CTranslate2 names no cuBLAS: read how it finds CUDA now"
    extra = {requirement.split("==")[0] for requirement in cuda_libs.gpu_requirements()}
    for name in sorted(names):
        family = "cudnn" if b"cudnn" in name else "cublas"
        # A CTranslate2 that opens cuDNN again needs nvidia-cudnn-cu12 in the gpu extra.
        assert f"nvidia-{family}-cu12" in extra, name
        assert f"nvidia-{family}-cu12" in cuda_libs.SONAMES
