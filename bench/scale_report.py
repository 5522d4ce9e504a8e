"""The scale benchmark's tables (bench/scale.py measures): each step's figures with the ratio
to the previous step, and a one-line reading per dimension that says whether a figure stays
flat, grows slower than the work, linearly with it, or worse.

The reading looks at the whole range: a figure within 25% of where it started is flat;
otherwise, going from ``a`` to ``b`` while the work goes from ``w0`` to ``w1``, it grows as
work^e with ``e = log(b / a) / log(w1 / w0)``: below 0.85 slower than the work, up to 1.15
linear, above that worse than linear.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Bounds of the reading's words: flat is a ratio within FLAT (either way) over the whole
# range, whatever the work grew by; the rest is told by the growth exponent.
FLAT = 1.25
LINEAR_FROM = 0.85
WORSE_ABOVE = 1.15
# A step counts as disturbed when other processes used more than this share of the CPU.
BUSY_SHARE = 0.10


@dataclass(frozen=True)
class Column:
    title: str
    key: str
    unit: str = ""  # appended to the number, e.g. " s"
    spec: str = ".1f"
    ratio: bool = True  # print the ratio to the previous step
    read: bool = True  # part of the reading line


@dataclass(frozen=True)
class Dimension:
    name: str  # key of the results: "uploads", "live", "search"
    title: str
    work_key: str  # the step's amount of work, e.g. "uploads"
    work_title: str
    columns: tuple[Column, ...]


MIB = " MiB"
UPLOADS = Dimension(
    "uploads",
    "Concurrent uploads of a 2-minute file",
    "uploads",
    "uploads",
    (
        Column("wall, first POST to last done", "wall_s", " s"),
        Column("processing per file (mean)", "processing_mean_s", " s"),
        Column("worker CPU", "worker_cpu_s", " s", ".0f"),
        Column("web peak RSS", "web_peak_mib", MIB, ".0f"),
        Column("workers peak RSS", "workers_peak_mib", MIB, ".0f"),
        Column("others' CPU", "other_cpu_s", " s", ".0f", ratio=False, read=False),
    ),
)
LIVE = Dimension(
    "live",
    "Live streams through /ws at real-time pace",
    "streams",
    "streams",
    (
        Column("final latency p50", "latency_p50_s", " s", ".2f"),
        Column("final latency p95", "latency_p95_s", " s", ".2f"),
        Column("session wall per stream (mean)", "session_wall_s", " s"),
        Column("worker CPU", "worker_cpu_s", " s", ".0f"),
        Column("web peak RSS", "web_peak_mib", MIB, ".0f"),
        Column("workers peak RSS", "workers_peak_mib", MIB, ".0f"),
        Column("others' CPU", "other_cpu_s", " s", ".0f", ratio=False, read=False),
    ),
)
SEARCH = Dimension(
    "search",
    "Search over a history of Korean segments",
    "segments",
    "segments",
    (
        Column("segments ?q= p50", "segments_p50_ms", " ms"),
        Column("segments ?q= p95", "segments_p95_ms", " ms"),
        Column("transcripts ?q= p50", "transcripts_p50_ms", " ms"),
        Column("transcripts ?q= p95", "transcripts_p95_ms", " ms"),
        Column("web peak RSS", "web_peak_mib", MIB, ".0f"),
        Column("PostgreSQL + Redis CPU", "db_cpu_s", " s", ".1f"),
        Column("table + index", "db_mib", MIB, ".0f"),
        Column("fill", "fill_s", " s", ".0f", read=False),
        Column("others' CPU", "other_cpu_s", " s", ".0f", ratio=False, read=False),
    ),
)
DIMENSIONS = (UPLOADS, LIVE, SEARCH)


def ratio(previous: float | None, current: float | None) -> float | None:
    """``current / previous``; None when either is missing or ``previous`` is not positive."""
    if previous is None or current is None or previous <= 0:
        return None
    return current / previous


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"x{value:.2f}"


def exponent(w0: float, w1: float, a: float | None, b: float | None) -> float | None:
    """e in ``b / a = (w1 / w0) ** e``; None when it cannot be told."""
    if a is None or b is None or a <= 0 or b <= 0 or w0 <= 0 or w1 <= w0:
        return None
    return math.log(b / a) / math.log(w1 / w0)


def growth_word(e: float | None, overall: float | None) -> str:
    """The reading of a figure that changed by ``overall`` with growth exponent ``e``."""
    if e is None or overall is None:
        return "unknown"
    if 1 / FLAT <= overall <= FLAT:
        return "flat"
    if overall < 1:
        return "falls"
    if e < LINEAR_FROM:
        return "slower than the work"
    if e <= WORSE_ABOVE:
        return "linear"
    return "worse than linear"


def work_label(value: float) -> str:
    """1,000,000 -> 1M, 100,000 -> 100k, 8 -> 8."""
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if value >= size and value % (size // 10) == 0:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"


def cell(step: dict, previous: dict | None, column: Column) -> str:
    value = step.get(column.key)
    if value is None:
        return "-"
    text = f"{format(value, column.spec)}{column.unit}"
    if column.ratio and previous is not None:
        text += f" ({fmt_ratio(ratio(previous.get(column.key), value))})"
    return text


def table_lines(dimension: Dimension, steps: list[dict]) -> list[str]:
    """A Markdown table: one row per step, each figure with its ratio to the row above."""
    header = [dimension.work_title, *(c.title for c in dimension.columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    previous = None
    for step in steps:
        row = [
            work_label(step[dimension.work_key]),
            *(cell(step, previous, c) for c in dimension.columns),
        ]
        lines.append("| " + " | ".join(row) + " |")
        previous = step
    return lines


def reading(dimension: Dimension, steps: list[dict]) -> str:
    """One line: how each figure grew from the first step to the last against the work,
    with any single step that grew worse than linear named."""
    if len(steps) < 2:
        return "Reading: one step only, nothing to compare."
    w0, w1 = steps[0][dimension.work_key], steps[-1][dimension.work_key]
    parts = []
    for column in dimension.columns:
        if not column.read:
            continue
        a, b = steps[0].get(column.key), steps[-1].get(column.key)
        e, overall = exponent(w0, w1, a, b), ratio(a, b)
        word = growth_word(e, overall)
        part = f"{column.title} {word}"
        if e is not None:
            part += f" ({fmt_ratio(overall)})"
        steep = [
            f"{work_label(p[dimension.work_key])}->{work_label(s[dimension.work_key])}"
            for p, s in zip(steps, steps[1:], strict=False)
            if (
                x := exponent(
                    p[dimension.work_key],
                    s[dimension.work_key],
                    p.get(column.key),
                    s.get(column.key),
                )
            )
            is not None
            and x > WORSE_ABOVE
        ]
        if steep and word != "worse than linear":
            part += f", worse than linear at {', '.join(steep)}"
        parts.append(part)
    return f"Reading (x{w1 / w0:g} the work): " + "; ".join(parts) + "."


def busy_note(dimension: Dimension, step: dict, cores: int) -> str | None:
    """A line when the machine was not quiet for a step: the wait for quiet ran out, or
    other processes used more than BUSY_SHARE of the CPU while it ran."""
    reasons = []
    if step.get("quiet_timeout"):
        reasons.append(f"not quiet after waiting {step.get('quiet_wait_s', 0):.0f} s")
    wall = step.get("step_wall_s") or 0.0
    other = step.get("other_cpu_s")
    if other is not None and wall > 0 and other > BUSY_SHARE * wall * cores:
        reasons.append(
            f"other processes used {other:.0f} CPU-s in {wall:.0f} s "
            f"({other / (wall * cores):.0%} of {cores} cores)"
        )
    if not reasons:
        return None
    label = work_label(step[dimension.work_key])
    return f"  busy machine at {label} {dimension.work_title}: " + "; ".join(reasons)


def report(results: dict[str, list[dict]], cores: int) -> list[str]:
    """The printed report: per dimension measured, its table, reading and busy notes."""
    lines: list[str] = []
    for dimension in DIMENSIONS:
        steps = results.get(dimension.name)
        if not steps:
            continue
        lines += ["", f"{dimension.title}:", ""]
        lines += table_lines(dimension, steps)
        lines += ["", reading(dimension, steps)]
        notes = [n for s in steps if (n := busy_note(dimension, s, cores))]
        lines += notes or ["  (the machine was quiet at every step)"]
    return lines
