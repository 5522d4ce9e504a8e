"""The scale benchmark's tables (bench/scale_report.py) on steps whose figures are known: a
table that printed a wrong ratio, or called quadratic growth linear, would mislead whoever
sizes a machine from it."""

from __future__ import annotations

import pytest

from bench.scale_report import (
    LIVE,
    SEARCH,
    UPLOADS,
    busy_note,
    exponent,
    fmt_ratio,
    growth_word,
    ratio,
    reading,
    report,
    table_lines,
    work_label,
)


def uploads(n: int, wall: float, web: float = 300.0, workers: float = 2000.0, **extra) -> dict:
    return {
        "uploads": n,
        "wall_s": wall,
        "processing_mean_s": 20.0,
        "worker_cpu_s": 40.0 * n,
        "web_peak_mib": web,
        "workers_peak_mib": workers,
        "other_cpu_s": 1.0,
        "step_wall_s": wall,
        **extra,
    }


def test_ratio_and_its_format():
    assert ratio(10.0, 20.3) == pytest.approx(2.03)
    assert fmt_ratio(ratio(10.0, 20.3)) == "x2.03"
    assert ratio(None, 1.0) is None
    assert ratio(0.0, 1.0) is None
    assert fmt_ratio(None) == "-"


def test_work_labels():
    assert [work_label(v) for v in (1, 8, 10_000, 100_000, 1_000_000, 2_500)] == [
        "1",
        "8",
        "10k",
        "100k",
        "1M",
        "2.5k",
    ]


def test_exponent_and_words():
    # Doubling three times: a figure x8 is linear, x64 quadratic, x1.1 flat.
    assert exponent(1, 8, 10.0, 80.0) == pytest.approx(1.0)
    assert exponent(1, 8, 10.0, 640.0) == pytest.approx(2.0)
    assert growth_word(exponent(1, 8, 10, 80), 8.0) == "linear"
    assert growth_word(exponent(1, 8, 10, 640), 64.0) == "worse than linear"
    assert growth_word(exponent(1, 8, 10, 11), 1.1) == "flat"
    assert growth_word(exponent(1, 8, 10, 20), 2.0) == "slower than the work"
    assert growth_word(exponent(1, 8, 10, 5), 0.5) == "falls"
    assert growth_word(None, None) == "unknown"
    assert exponent(1, 8, None, 3.0) is None


def test_table_has_every_step_with_ratios_to_the_row_above():
    steps = [uploads(1, 40.0), uploads(2, 81.2), uploads(4, 162.4), uploads(8, 340.0)]
    lines = table_lines(UPLOADS, steps)
    assert lines[0].startswith("| uploads | wall, first POST to last done |")
    assert lines[1] == "|" + "---|" * (1 + len(UPLOADS.columns))
    first, second, _third, last = lines[2:]
    # The first step has nothing to compare with.
    assert first.startswith("| 1 | 40.0 s | 20.0 s | 40 s | 300 MiB | 2000 MiB | 1 s |")
    assert "81.2 s (x2.03)" in second
    assert "20.0 s (x1.00)" in second
    assert "340.0 s (x2.09)" in last
    # Others' CPU is context, not a figure that scales: no ratio.
    assert last.endswith("| 1 s |")


def test_missing_figures_print_a_dash():
    steps = [uploads(1, 40.0), {**uploads(2, 80.0), "processing_mean_s": None}]
    second = table_lines(UPLOADS, steps)[3]
    assert "| - |" in second


def test_reading_names_linear_flat_and_worse():
    steps = [
        uploads(1, 40.0, web=300),
        uploads(2, 80.0, web=301),
        uploads(4, 160.0, web=305),
        uploads(8, 320.0, web=310),
    ]
    line = reading(UPLOADS, steps)
    assert line.startswith("Reading (x8 the work): ")
    assert "wall, first POST to last done linear (x8.00)" in line
    assert "web peak RSS flat (x1.03)" in line
    assert "others' CPU" not in line
    quadratic = [uploads(1, 10.0), uploads(2, 40.0), uploads(4, 160.0)]
    assert "wall, first POST to last done worse than linear (x16.00)" in reading(UPLOADS, quadratic)


def test_reading_names_a_single_steep_step():
    # Linear overall (x4 for x4) but the second doubling cost x3.2.
    steps = [uploads(1, 10.0), uploads(2, 12.5), uploads(4, 40.0)]
    line = reading(UPLOADS, steps)
    assert "wall, first POST to last done linear (x4.00), worse than linear at 2->4" in line


def test_reading_of_one_step():
    assert "one step only" in reading(UPLOADS, [uploads(1, 10.0)])


def test_busy_notes():
    quiet = uploads(1, 100.0, other_cpu_s=5.0)
    assert busy_note(UPLOADS, quiet, cores=2) is None
    shared = uploads(2, 100.0, other_cpu_s=50.0)
    assert "other processes used 50 CPU-s in 100 s (25% of 2 cores)" in busy_note(
        UPLOADS, shared, cores=2
    )
    waited = uploads(4, 100.0, quiet_timeout=True, quiet_wait_s=60.0)
    assert "not quiet after waiting 60 s" in busy_note(UPLOADS, waited, cores=2)


def test_report_prints_the_dimensions_measured_only():
    live = [
        {"streams": n, "latency_p50_s": 1.0 * n, "latency_p95_s": 1.5 * n, "step_wall_s": 120}
        for n in (1, 2, 4)
    ]
    search = [
        {"segments": n, "segments_p50_ms": 20.0, "segments_p95_ms": 30.0, "step_wall_s": 60}
        for n in (10_000, 100_000, 1_000_000)
    ]
    lines = report({"live": live, "search": search}, cores=2)
    text = "\n".join(lines)
    assert UPLOADS.title not in text
    assert LIVE.title in text and SEARCH.title in text
    assert "| 1M | 20.0 ms (x1.00) | 30.0 ms (x1.00) |" in text
    assert "Reading (x100 the work): segments ?q= p50 flat (x1.00)" in text
    assert "(the machine was quiet at every step)" in text
