"""The batch benchmark's scoring and report (bench/batch.py runs the three paths): CER of
each file's text, the representative run of each path, per-file ratios and the totals
printed against the issue's targets, PASS or FAIL."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.cer import char_edits
from bench.common import fmt, pct

# Targets of the issue, for this machine.
MAX_SINGLE_RATIO = 1.15

# --- what is measured ----------------------------------------------------------------


@dataclass
class BenchFile:
    id: str
    path: Path
    kind: str  # "ko" (single Korean clip), "none" (no speech) or "long"
    reference: str  # reference_nospace; "" for no-speech
    duration: float
    runs: dict[str, list[dict]] = field(default_factory=dict)


def score(reference: str, hypothesis: str) -> dict:
    """Edits and reference length, as-is and with Arabic numerals read as Sino-Korean."""
    chars, asis, numerals = char_edits(reference, hypothesis)
    result: dict = {"ref_chars": chars}
    for key, edits in (("asis", asis), ("numerals", numerals)):
        result[f"edits_{key}"] = edits
        result[f"cer_{key}"] = edits / chars if chars else None
    return result


def describe(text: str, segments: int) -> dict:
    return {"text": text, "segments": segments, "words": len(text.split())}


# --- the report -----------------------------------------------------------------------


def disturbed(run: dict) -> bool:
    """Other processes used a noticeable share of the CPU while this run was timed."""
    return run.get("other_cpu_s", 0.0) > max(0.25, 0.1 * run["wall_s"])


def representative(runs: list[dict], statistic: str) -> dict:
    """The run whose wall time is the statistic (the lower median for an even count), so
    that its breakdown, CPU figures and text all come from that one run."""
    done = [r for r in runs if r["status"] == "done"] or runs
    ordered = sorted(done, key=lambda r: r["wall_s"])
    return ordered[0] if statistic == "min" else ordered[(len(ordered) - 1) // 2]


def summarise_file(item: BenchFile, statistic: str) -> dict:
    out = {"id": item.id, "kind": item.kind, "duration_s": round(item.duration, 3)}
    for path, runs in item.runs.items():
        chosen = representative(runs, statistic)
        entry = {
            key: value
            for key, value in chosen.items()
            if key not in ("text", "segments", "words", "status")
        }
        entry.update(
            status="done" if all(r["status"] == "done" for r in runs) else "failed",
            segments=chosen["segments"],
            words=chosen["words"],
            text=chosen["text"],
            disturbed=disturbed(chosen),
            disturbed_runs=sum(disturbed(r) for r in runs),
            wall_s_all=[round(r["wall_s"], 3) for r in runs],
        )
        if item.kind != "none" and chosen["status"] == "done":
            entry.update(score(item.reference, chosen["text"]))
        out[path] = entry
    if "platform" in out and "plain" in out and out["plain"]["wall_s"]:
        out["ratio"] = out["platform"]["wall_s"] / out["plain"]["wall_s"]
    return out


def waiting(meta: dict) -> str:
    """How the bench's client learned that a file was done."""
    if meta.get("wait", "poll") == "events":
        return "done from the event stream"
    return f"poll every {meta['poll_s']}-{meta['poll_max_s']} s"


def report(summary: list[dict], paths: list[str], meta: dict) -> dict:
    lines: list[str] = []
    add = lines.append
    add("")
    add(
        f"Batch benchmark: platform (upload -> done, real daphne + worker) vs plain faster-whisper; "
        f"times are the {meta['statistic']} of {meta['repeat']} run(s), in seconds"
    )
    add(
        f"model {meta['model']} | cpu int8 | beam {meta['beam_size']} | cpu_threads "
        f"{meta['cpu_threads']} (0: CTranslate2 default) | {meta['cores']} cores | "
        f"stt batch size {meta['stt_batch_size']} | {waiting(meta)} | "
        f"load avg before {meta['load_before']}"
    )
    add("CER: character-level on reference_nospace; CER# = Arabic numerals read as Sino-Korean")
    add("")
    header = (
        f"{'file':<34} {'audio':>6} {'platf':>7} {'plain':>7} {'ratio':>6}  "
        f"{'CER plat':>8} {'CER pln':>8} {'CER# plat':>9} {'CER# pln':>8}  {'segs p/pl':>9} "
        f"{'other cpu p/pl':>14}"
    )
    add(header)
    add("-" * len(header))
    for row in summary:
        p, q = row.get("platform", {}), row.get("plain", {})
        add(
            f"{row['id'][:34]:<34} {row['duration_s']:>6.1f} {fmt(p.get('wall_s')):>7} "
            f"{fmt(q.get('wall_s')):>7} {fmt(row.get('ratio')):>6}  "
            f"{pct(p.get('cer_asis')):>8} {pct(q.get('cer_asis')):>8} "
            f"{pct(p.get('cer_numerals')):>9} {pct(q.get('cer_numerals')):>8}  "
            f"{str(p.get('segments', '-')) + '/' + str(q.get('segments', '-')):>9} "
            f"{fmt(p.get('other_cpu_s')) + '/' + fmt(q.get('other_cpu_s')):>14}"
            + (" *" if p.get("disturbed") or q.get("disturbed") else "")
            + ("" if p.get("status", "done") == "done" else f"  PLATFORM {p.get('status')}")
        )

    add(
        "other cpu: CPU seconds used by processes outside the bench while the run was timed "
        "(* = more than 0.25 s and 10% of the reported run: its time is inflated by other load)"
    )
    add("")
    add("Where the platform's time goes (seconds, from the Transcript row's timestamps):")
    add(
        "  to_row = upload + probe until the row exists; queue = row -> worker claims it "
        "(commit, broker, worker); processing = claim -> done (decode, VAD, Whisper, DB); "
        "poll = done -> client sees it"
    )
    has_engine = "engine" in paths
    header = (
        f"{'file':<34} {'platf':>6} {'to_row':>6} {'queue':>6} {'proc':>6} {'poll':>5} "
        f"{'wrk cpu':>7} {'web cpu':>7}" + (f" {'engine':>6}" if has_engine else "")
    )
    add(header)
    add("-" * len(header))
    for row in summary:
        p, e = row.get("platform", {}), row.get("engine", {})
        add(
            f"{row['id'][:34]:<34} {fmt(p.get('wall_s')):>6} {fmt(p.get('to_row_s')):>6} "
            f"{fmt(p.get('queue_s')):>6} {fmt(p.get('processing_s')):>6} "
            f"{fmt(p.get('poll_lag_s')):>5} {fmt(p.get('worker_cpu_s')):>7} "
            f"{fmt(p.get('web_cpu_s')):>7}" + (f" {fmt(e.get('wall_s')):>6}" if has_engine else "")
        )
    add(
        "  engine = the worker's own functions (decode, VAD, batched Whisper, filter) run in "
        "this process without HTTP, Celery or the database"
    )

    add("")
    add(
        "Inside the in-process runs (seconds; enc = encoder, n = 30 s windows encoded; "
        "dec = decoder, n = generate calls incl. temperature fallbacks):"
    )
    inner = [path for path in ("engine", "plain") if path in paths]
    header = f"{'file':<34}" + "".join(
        f" | {path:<6} {'total':>6} {'decode':>6} {'vad':>5} {'feat':>5} {'enc':>5} {'n':>3} "
        f"{'dec':>6} {'n':>3} {'cpu':>6}"
        for path in inner
    )
    add(header)
    add("-" * len(header))
    for row in summary:
        line = f"{row['id'][:34]:<34}"
        for path in inner:
            r = row.get(path, {})
            line += (
                f" | {'':<6} {fmt(r.get('wall_s')):>6} {fmt(r.get('decode_s')):>6} "
                f"{fmt(r.get('vad_s')):>5} {fmt(r.get('features_s')):>5} "
                f"{fmt(r.get('encoder_s')):>5} {fmt(r.get('encoder_calls'), 'g'):>3} "
                f"{fmt(r.get('decoder_s')):>6} {fmt(r.get('decoder_calls'), 'g'):>3} "
                f"{fmt(r.get('cpu_s')):>6}"
            )
        add(line)

    # Totals.
    def total(kind: str, path: str, key: str = "wall_s") -> float | None:
        values = [r.get(path, {}).get(key) for r in summary if r["kind"] == kind]
        return None if not values or None in values else sum(values)

    def weighted(kinds: tuple[str, ...], path: str, key: str) -> float | None:
        rows = [r.get(path, {}) for r in summary if r["kind"] in kinds]
        if not rows or any(f"edits_{key}" not in r for r in rows):
            return None
        chars = sum(r["ref_chars"] for r in rows)
        return sum(r[f"edits_{key}"] for r in rows) / chars if chars else None

    totals: dict = {}
    add("")
    add("Totals")
    long_rows = [r for r in summary if r["kind"] == "long"]
    kinds = [("ko", "single Korean clips"), ("none", "no-speech clips")]
    if long_rows:
        kinds.append(("long", f"long files ({len(long_rows)})"))
    for kind, label in kinds:
        row = {path: total(kind, path) for path in paths}
        totals[f"time_{kind}"] = row
        ratio = (
            row["platform"] / row["plain"]
            if row.get("platform") is not None and row.get("plain")
            else None
        )
        totals[f"ratio_{kind}"] = ratio
        extra = f", engine {fmt(row.get('engine'))} s" if has_engine else ""
        add(
            f"  time, {label:<20}: platform {fmt(row['platform'])} s, plain "
            f"{fmt(row['plain'])} s, ratio {fmt(ratio, '.3f')}{extra}"
        )
    for kinds, label in ((("ko",), "single Korean clips"), (("long",), "long files")):
        for path in paths:
            cer_asis = weighted(kinds, path, "asis")
            cer_num = weighted(kinds, path, "numerals")
            totals[f"cer_{'_'.join(kinds)}_{path}"] = {"asis": cer_asis, "numerals": cer_num}
            add(
                f"  CER (total edits / total ref chars), {label:<19} {path:<8}: "
                f"{pct(cer_asis)} as-is, {pct(cer_num)} with numerals read"
            )
    for path in paths:
        rows = [r for r in summary if r["kind"] == "none"]
        segs = sum(r.get(path, {}).get("segments", 0) for r in rows)
        words = sum(r.get(path, {}).get("words", 0) for r in rows)
        totals[f"nospeech_{path}"] = {"segments": segs, "words": words}
        add(f"  no-speech clips, {path:<8}: {segs} segment(s), {words} word(s) emitted")
        for r in rows:
            text = r.get(path, {}).get("text")
            if text:
                add(f"      {r['id']}: {text!r}")

    # Targets.
    targets = []

    def target(name: str, ok: bool | None, detail: str) -> None:
        verdict = "PASS" if ok else ("FAIL" if ok is not None else "N/A ")
        targets.append({"target": name, "result": verdict.strip(), "detail": detail})
        add(f"  {verdict}  {name}: {detail}")

    add("")
    add("Targets")
    ratio = totals.get("ratio_ko")
    target(
        f"single clips: total time ratio platform/plain <= {MAX_SINGLE_RATIO}",
        None if ratio is None else ratio <= MAX_SINGLE_RATIO,
        f"{fmt(ratio, '.3f')}",
    )
    if long_rows:
        plat, plain = totals["time_long"].get("platform"), totals["time_long"].get("plain")
        target(
            "long files: platform faster than plain sequential faster-whisper",
            None if plat is None or plain is None else plat < plain,
            f"platform {fmt(plat)} s vs plain {fmt(plain)} s in total "
            f"(ratio {fmt(totals['ratio_long'], '.3f')}; per file "
            + ", ".join(f"{fmt(r.get('ratio'), '.2f')}" for r in long_rows)
            + ")",
        )
    for kinds, label in ((("ko",), "single clips"), (("long",), "long files")):
        key = "_".join(kinds)
        plat = totals[f"cer_{key}_platform"]
        plain = totals[f"cer_{key}_plain"]
        ok = None
        if None not in (plat["asis"], plain["asis"], plat["numerals"], plain["numerals"]):
            ok = plat["asis"] <= plain["asis"] and plat["numerals"] <= plain["numerals"]
        target(
            f"{label}: platform CER not worse than plain",
            ok,
            f"as-is {pct(plat['asis'])} vs {pct(plain['asis'])}, "
            f"with numerals {pct(plat['numerals'])} vs {pct(plain['numerals'])}",
        )
    ns = totals["nospeech_platform"]
    target(
        "no-speech clips: platform emits zero segments",
        ns["segments"] == 0 if any(r["kind"] == "none" for r in summary) else None,
        f"{ns['segments']} segment(s), {ns['words']} word(s) (plain: "
        f"{totals['nospeech_plain']['segments']} segment(s), "
        f"{totals['nospeech_plain']['words']} word(s))",
    )
    noisy = [
        f"{r['id']} ({path})" for r in summary for path in paths if r.get(path, {}).get("disturbed")
    ]
    if noisy:
        add(f"  NOTE  reported runs inflated by other load on the machine: {', '.join(noisy)}")
    failed = [r["id"] for r in summary if r.get("platform", {}).get("status") != "done"]
    if failed:
        add(f"  FAIL  platform runs that did not end done: {failed}")
    add(f"load avg after: {meta.get('load_after')}")
    print("\n".join(lines), flush=True)
    return {"totals": totals, "targets": targets, "printed": lines}
