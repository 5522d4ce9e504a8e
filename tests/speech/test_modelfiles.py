"""The embedded Whisper model is joined from its two PyPI halves and verified."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.core.management import call_command

from transcription.speech.modelfiles import (
    MODEL_BIN_SIZE,
    SIDE_FILES,
    ModelPreparationError,
    ModelSources,
    installed_sources,
    is_prepared,
    prepare_embedded_model,
)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("model") / "whisper-base"
    assert prepare_embedded_model(dest) is True
    return dest


def _copy_sources(tmp_path: Path) -> ModelSources:
    real = installed_sources()
    part1 = shutil.copytree(real.part1_dir, tmp_path / "part1")
    part2 = shutil.copytree(real.part2_dir, tmp_path / "part2")
    return ModelSources(Path(part1), Path(part2))


def test_prepared_folder_is_complete(prepared):
    assert (prepared / "model.bin").stat().st_size == MODEL_BIN_SIZE
    for name in SIDE_FILES:
        assert (prepared / name).is_file()
    assert not (prepared / "model.bin.partial").exists()
    assert is_prepared(prepared)


def test_second_run_does_nothing(prepared):
    before = (prepared / "model.bin").stat().st_mtime_ns
    assert prepare_embedded_model(prepared) is False
    assert (prepared / "model.bin").stat().st_mtime_ns == before


def test_a_changed_model_bin_is_prepared_again(tmp_path, prepared):
    dest = Path(shutil.copytree(prepared, tmp_path / "copy"))
    with (dest / "model.bin").open("r+b") as handle:
        handle.truncate(1000)
    assert not is_prepared(dest)
    assert prepare_embedded_model(dest) is True
    assert is_prepared(dest)


def test_a_corrupted_half_is_caught_by_its_checksum(tmp_path):
    sources = _copy_sources(tmp_path)
    with (sources.part2_dir / "model.bin.part2").open("r+b") as handle:
        handle.seek(12_345_678)
        byte = handle.read(1)
        handle.seek(12_345_678)
        handle.write(bytes([byte[0] ^ 0xFF]))
    dest = tmp_path / "model"
    with pytest.raises(ModelPreparationError, match="sha256") as caught:
        prepare_embedded_model(dest, sources)
    assert "corrupted" in str(caught.value)
    # Nothing that looks like a finished model is left behind.
    assert not (dest / "model.bin").exists()
    assert not (dest / "model.bin.partial").exists()
    assert not is_prepared(dest)


def test_a_truncated_half_is_caught_by_its_size(tmp_path):
    sources = _copy_sources(tmp_path)
    with (sources.part1_dir / "model.bin.part1").open("r+b") as handle:
        handle.truncate(1_000_000)
    with pytest.raises(ModelPreparationError, match="expected 145,217,532"):
        prepare_embedded_model(tmp_path / "model", sources)


def test_a_missing_half_is_named(tmp_path):
    sources = _copy_sources(tmp_path)
    (sources.part2_dir / "model.bin.part2").unlink()
    with pytest.raises(ModelPreparationError, match="model.bin.part2"):
        prepare_embedded_model(tmp_path / "model", sources)


def test_management_command_is_idempotent(tmp_path, prepared, capsys):
    dest = Path(shutil.copytree(prepared, tmp_path / "cmd"))
    call_command("prepare_model", dest=dest)
    assert "already prepared" in capsys.readouterr().out


@pytest.mark.slow
def test_faster_whisper_loads_the_folder_and_transcribes(prepared, eval_clip):
    from faster_whisper import WhisperModel

    model = WhisperModel(str(prepared), device="cpu", compute_type="int8", cpu_threads=2)
    path, entry = eval_clip("ko_picovoice_leopard_test_ko")
    segments, info = model.transcribe(str(path), language="ko", beam_size=5)
    text = "".join(segment.text for segment in segments).replace(" ", "")
    assert info.language == "ko"
    # The reference is "그는 이리저리 피하면서 길 한 옆으로 걸어갔다"; the small base
    # model mishears 이리저리 but gets the rest.
    assert "피하면서" in text and "걸어갔다" in text, text
