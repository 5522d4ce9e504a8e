"""The batch benchmark's scoring and report (bench/batch_report.py) on runs whose figures are
known: which run stands for a file, the ratios, the CER totals and each target's verdict."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.batch_report import BenchFile, describe, report, summarise_file

META = {
    "statistic": "min",
    "repeat": 2,
    "model": "whisper-base",
    "beam_size": 5,
    "cpu_threads": 0,
    "cores": 2,
    "stt_batch_size": 4,
    "poll_s": 0.05,
    "poll_max_s": 0.2,
    "load_before": [0.1, 0.1, 0.1],
    "load_after": [0.1, 0.1, 0.1],
}


def run(wall_s: float, text: str, segments: int = 1, other_cpu_s: float = 0.0, **extra) -> dict:
    return {
        "status": "done",
        "wall_s": wall_s,
        "other_cpu_s": other_cpu_s,
        **describe(text, segments),
        **extra,
    }


def bench_file(id_: str, kind: str, reference: str, platform: list, plain: list) -> BenchFile:
    item = BenchFile(
        id=id_, path=Path(f"/eval/{id_}.flac"), kind=kind, reference=reference, duration=5.0
    )
    item.runs = {"platform": platform, "plain": plain}
    return item


def test_the_fastest_run_stands_for_a_file_with_min_and_the_lower_median_otherwise():
    item = bench_file(
        "ko1",
        "ko",
        "안녕하세요",
        platform=[run(3.0, "안녕"), run(2.0, "안녕하세요"), run(2.5, "안녕하세")],
        plain=[run(2.0, "안녕하세요"), run(4.0, "안녕")],
    )
    fastest = summarise_file(item, "min")
    assert fastest["platform"]["wall_s"] == 2.0 and fastest["platform"]["text"] == "안녕하세요"
    assert fastest["platform"]["cer_asis"] == 0.0
    assert fastest["ratio"] == pytest.approx(1.0)
    assert fastest["platform"]["wall_s_all"] == [3.0, 2.0, 2.5]
    median = summarise_file(item, "median")
    assert median["platform"]["wall_s"] == 2.5 and median["platform"]["edits_asis"] == 1
    assert median["plain"]["wall_s"] == 2.0  # the lower of two
    assert median["ratio"] == pytest.approx(1.25)


def test_a_run_slowed_by_other_load_is_flagged():
    item = bench_file(
        "ko1", "ko", "안녕", platform=[run(2.0, "안녕", other_cpu_s=0.9)], plain=[run(2.0, "안녕")]
    )
    summary = summarise_file(item, "min")
    assert summary["platform"]["disturbed"] and not summary["plain"]["disturbed"]


def summary_of(platform_long_s: float, platform_text: str, nospeech_segments: int) -> list[dict]:
    files = [
        bench_file(
            "ko1",
            "ko",
            "가나다라마바사아",
            [run(2.2, platform_text)],
            [run(2.0, "가나다라마바사자")],
        ),
        bench_file(
            "long",
            "long",
            "가나다라마바사아" * 4,
            [run(platform_long_s, "가나다라마바사아" * 4)],
            [run(10.0, "가나다라마바사아" * 4)],
        ),
        bench_file(
            "quiet",
            "none",
            "",
            [run(1.0, "감사합니다" if nospeech_segments else "", segments=nospeech_segments)],
            [run(1.0, "", segments=0)],
        ),
    ]
    return [summarise_file(item, "min") for item in files]


def verdict(result: dict, name_start: str) -> str:
    (found,) = [t["result"] for t in result["targets"] if t["target"].startswith(name_start)]
    return found


def test_every_target_passes_on_a_good_run(capsys):
    result = report(summary_of(8.0, "가나다라마바사아", 0), ["platform", "plain"], META)
    assert result["totals"]["ratio_ko"] == pytest.approx(1.1)
    assert result["totals"]["ratio_long"] == pytest.approx(0.8)
    assert result["totals"]["cer_ko_platform"]["asis"] == 0.0
    assert result["totals"]["cer_ko_plain"]["asis"] == pytest.approx(1 / 8)
    assert {t["result"] for t in result["targets"]} == {"PASS"}, result["targets"]
    assert len(result["targets"]) == 5
    assert "PASS  no-speech clips" in capsys.readouterr().out


def test_each_target_fails_when_its_figure_is_off():
    result = report(summary_of(12.0, "가나다라마바", 2), ["platform", "plain"], META)
    assert verdict(result, "single clips: total time") == "PASS"  # 1.1 is within 1.15
    assert verdict(result, "long files: platform faster") == "FAIL"  # 12 s against 10 s
    assert verdict(result, "single clips: platform CER") == "FAIL"  # 25% against 12.5%
    assert verdict(result, "long files: platform CER") == "PASS"
    assert verdict(result, "no-speech clips") == "FAIL"
    assert result["totals"]["nospeech_platform"] == {"segments": 2, "words": 1}
