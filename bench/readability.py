"""Whole, readable text (issue 14): the platform's stored transcript against plain faster-whisper.

``make bench-readability`` (or ``python -m bench.readability`` with ``DATABASE_URL`` set) runs
every clip of the shared evaluation set (Korean, English, no speech) and the long files
``make bench-batch`` builds (the Korean clips twice in order 3 s apart, and three seeded
shuffles with 1-5 s gaps; the same builder and seeds, so the same files) through two paths,
one after the other, in this process:

* platform: ``transcription.batch.pipeline.transcribe_transcript`` on a Transcript row of a
  bench database of its own (``stt_bench_readability``, dropped at the end), the file stored
  as its audio, the clip's language from the manifest ("ko" for long and no-speech files);
  what is scored is the segments it stored, words and all.
* plain: ``WhisperModel.transcribe(path, language=..., beam_size=WHISPER_BEAM_SIZE,
  vad_filter=True, word_timestamps=True)`` with the same model, device, compute type and
  threads, all segments consumed.

Per file it reports word counts, where the text ends against the last speech (Silero VAD),
similarity of the texts with case and punctuation kept, the error rate against the baseline
commit's (``bench/baselines/readability-<commit>.json``; ``--write-baseline`` makes one),
sentences in ``jfk.wav``, segments across long pauses, word timings and subtitle cues, then the
issue's targets (scoring and report: ``bench/readability_report.py``, tested in
``tests/test_bench_readability_report.py``). Results are saved as JSON under
``bench/results/``. Exit status is 0 whether targets pass or not; it is a benchmark.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

from bench.common import raise_interrupt
from bench.harness import (
    drop_bench_database,
    open_database,
    prepare_environment,
    server_name,
    setup_django,
)
from bench.readability_report import (
    baseline_of,
    long_pauses,
    report,
    spanning_segments,
    summarise_file,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
EVAL_DIR = Path(os.environ.get("EVAL_DIR") or REPO_ROOT.parent / "shared" / "eval")
RESULTS_DIR = REPO_ROOT / "bench" / "results"
BASELINE = REPO_ROOT / "bench" / "baselines" / "readability-22ef1a5.json"
WARMUP_CLIP = "ko_picovoice_leopard_test_ko"

# --- files -----------------------------------------------------------------------------


def git(*args: str) -> str:
    try:
        out = subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return ""
    return out.stdout.strip()


def code_version() -> str:
    """The commit measured, ``+dirty`` when transcription/ has uncommitted changes."""
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--", "transcription") else "")


def load_files(workdir: Path, copies: int, gap_s: float, shuffled: int) -> list[dict]:
    """Every clip of the evaluation set, then the long files of bench/batch.py: the Korean
    clips ``copies`` times in order ``gap_s`` apart and ``shuffled`` seeded shuffles, built
    by the same builder with the same seeds, with where each clip's speech lies."""
    from bench.batch import long_arrangements
    from tests.audio_files import long_file_with_gaps

    manifest = EVAL_DIR / "manifest.jsonl"
    if not manifest.exists():
        raise SystemExit(f"evaluation set not found at {EVAL_DIR}; set EVAL_DIR")
    entries = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    files = []
    for entry in entries:
        lang = entry["lang"]
        files.append(
            {
                "id": entry["id"],
                "path": EVAL_DIR / entry["file"],
                "kind": lang,
                # No-speech clips go in as Korean, the platform's default (as in bench-batch).
                "language": "ko" if lang == "none" else lang,
                "reference": entry["reference_nospace"] if lang == "ko" else entry["reference"],
                "duration_s": entry["duration_s"],
            }
        )
    korean = [f for f in files if f["kind"] == "ko"]
    # bench/batch.py's arrangements, so that the long files are the same ones.
    for file_id, order, gap in long_arrangements(korean, copies, gap_s, shuffled):
        path, spans = long_file_with_gaps(
            workdir / f"{file_id}.wav", [f["path"] for f in order], gap_s=gap, lead_s=1.0
        )
        with wave.open(str(path)) as wav:
            duration = wav.getnframes() / wav.getframerate()
        files.append(
            {
                "id": file_id,
                "path": path,
                "kind": "long",
                "language": "ko",
                "reference": "".join(f["reference"] for f in order),
                "duration_s": round(duration, 3),
                "gap_s": gap,
                "spans": [[round(a, 3), round(b, 3)] for a, b in spans],
                "pauses": [[round(a, 3), round(b, 3)] for a, b in long_pauses(spans)],
            }
        )
    return files


def speech_end(path: Path) -> float | None:
    """The end of the last speech Silero VAD hears (as the platform cuts it), less its pad."""
    from django.conf import settings

    from transcription.speech import engine
    from transcription.speech.audio import decode_audio

    regions = engine.speech_regions(decode_audio(path))
    if not regions:
        return None
    return round(regions[-1][1] - settings.VAD_SPEECH_PAD_MS / 1000, 3)


# --- the two paths ---------------------------------------------------------------------


def subtitles():
    """``build_cues`` and ``cue_violations`` where transcription/web/subtitles.py has them."""
    try:
        from transcription.web.subtitles import build_cues, cue_violations
    except ImportError:
        return None
    return build_cues, cue_violations


def check_srt(rows, pauses: list) -> dict:
    """The cues of the stored segments against the cue rules, and against the file's long
    pauses (which ``cue_violations`` cannot see: cues carry no word times)."""
    found = subtitles()
    if found is None:
        return {"available": False}
    build_cues, cue_violations = found
    try:
        cues = build_cues(rows)
        violations = [str(v) for v in cue_violations(cues)]
        as_dicts = [{"start": c.start, "end": c.end, "text": c.text} for c in cues]
    except Exception as exc:  # noqa: BLE001 - a broken helper is a finding, not a crash
        return {"available": True, "cues": 0, "violations": [], "error": repr(exc)}
    for hit in spanning_segments(as_dicts, [tuple(p) for p in pauses]):
        violations.append(
            f"cue {hit['segment'] + 1} ({hit['start']:.3f}-{hit['end']:.3f} s) spans the "
            f"pause {hit['pause']}"
        )
    return {"available": True, "cues": len(cues), "violations": violations}


def platform_run(item: dict, srt: bool = False) -> dict:
    from django.core.files import File

    from transcription.batch.pipeline import transcribe_transcript
    from transcription.models import Transcript

    with item["path"].open("rb") as handle:
        transcript = Transcript.objects.create(
            source=Transcript.Source.UPLOAD,
            title=f"bench {item['id']}",
            language=item["language"],
            audio=File(handle, name=item["path"].name),
        )
    started = time.perf_counter()
    result = transcribe_transcript(transcript.pk)
    wall_s = time.perf_counter() - started
    rows = list(result.segments.order_by("index"))
    run = {
        "wall_s": wall_s,
        "status": result.status,
        "error": result.error,
        "segments": [
            {"start": s.start, "end": s.end, "text": s.text, "words": s.words} for s in rows
        ],
    }
    if srt:
        run["srt"] = check_srt(rows, item.get("pauses", []))
    return run


class Plain:
    """Bare faster-whisper as a user of the library would call it, with word timestamps."""

    def __init__(self) -> None:
        from django.conf import settings
        from faster_whisper import WhisperModel

        from transcription.speech import engine

        device, compute_type = engine.runtime()
        self.beam_size = settings.WHISPER_BEAM_SIZE
        self.model = WhisperModel(
            settings.WHISPER_MODEL,
            device=device,
            compute_type=compute_type,
            cpu_threads=settings.WHISPER_CPU_THREADS,
        )

    def run(self, item: dict) -> dict:
        started = time.perf_counter()
        segments, _info = self.model.transcribe(
            str(item["path"]),
            language=item["language"],
            beam_size=self.beam_size,
            vad_filter=True,
            word_timestamps=True,
        )
        segments = list(segments)
        wall_s = time.perf_counter() - started
        return {
            "wall_s": wall_s,
            "status": "done",
            "segments": [
                {
                    "start": round(s.start, 3),
                    "end": round(s.end, 3),
                    "text": s.text.strip(),
                    "words": [
                        {
                            "word": w.word,
                            "start": round(w.start, 3),
                            "end": round(w.end, 3),
                            "probability": round(w.probability, 4),
                        }
                        for w in s.words or []
                    ],
                }
                for s in segments
            ],
        }


# --- the run -----------------------------------------------------------------------------


def load_baseline(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def newest_batch_result() -> str:
    """A line on the newest bench-batch result here, if any (bench-batch owns that target)."""
    found = sorted(RESULTS_DIR.glob("batch-*.json"))
    if not found:
        return ""
    try:
        targets = json.loads(found[-1].read_text()).get("targets", [])
    except (OSError, ValueError):
        return ""
    verdicts = [t.get("result") for t in targets]
    return (
        f"newest result {found[-1].name}: {verdicts.count('PASS')} PASS, "
        f"{verdicts.count('FAIL')} FAIL"
    )


def run(args: argparse.Namespace) -> int:
    env = prepare_environment("bench-readability-", args.redis_db)
    base_db, workdir = env.base_database_url, env.workdir
    database_made = False
    started_at = dt.datetime.now()
    try:
        open_database(base_db, args.db_name, fresh=True, make_target="bench-readability")
        database_made = True
        print(f"database {args.db_name} on {server_name(base_db, 5432)} (fresh, migrating)")
        setup_django(("faster_whisper", "transcription"))
        from django.conf import settings

        from transcription.speech import engine

        files = load_files(workdir, args.long_copies, args.gap, args.shuffled)
        warmup = next(f for f in files if f["id"] == WARMUP_CLIP)
        if args.only:
            wanted = [w.strip() for w in args.only.split(",") if w.strip()]
            files = [f for f in files if any(w in f["id"] for w in wanted)]
        commit = code_version()
        print(f"code {commit}; {len(files)} files; working in {workdir}", flush=True)
        engine.get_model()
        plain = Plain()
        # Not counted: the first call of each path pays for lazy loading.
        platform_run(warmup)
        plain.run(warmup)

        records = []
        for item in files:
            record = {
                key: item[key]
                for key in ("id", "kind", "language", "reference", "duration_s", "pauses", "spans")
                if key in item
            }
            record["speech_end_s"] = speech_end(item["path"])
            record["platform"] = platform_run(item, srt=item["kind"] == "long")
            record["srt"] = record["platform"].pop("srt", None)
            record["plain"] = plain.run(item)
            records.append(record)
            p, q = record["platform"], record["plain"]
            print(
                f"  {item['id']:<34} platform {p['wall_s']:6.2f} s {len(p['segments']):3} seg | "
                f"plain {q['wall_s']:6.2f} s {len(q['segments']):3} seg",
                flush=True,
            )

        baseline_path = Path(args.baseline)
        baseline = None if args.write_baseline else load_baseline(baseline_path)
        rows = [summarise_file(record, baseline) for record in records]
        meta = {
            "started_at": started_at.isoformat(timespec="seconds"),
            "commit": commit,
            "model": settings.WHISPER_MODEL,
            "runtime": list(engine.runtime()),
            "beam_size": settings.WHISPER_BEAM_SIZE,
            "cpu_threads": settings.WHISPER_CPU_THREADS,
            "vad_speech_pad_ms": settings.VAD_SPEECH_PAD_MS,
            "cores": os.cpu_count(),
            "long_file": {"copies": args.long_copies, "gap_s": args.gap, "shuffled": args.shuffled},
            "baseline_commit": (baseline or {}).get("commit"),
            "baseline_file": str(baseline_path) if baseline else None,
            "batch": newest_batch_result(),
            "load_after": [round(x, 2) for x in os.getloadavg()],
        }
        outcome = report(rows, meta)
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        stamp = started_at.strftime("%Y%m%d-%H%M%S")
        out = Path(args.output) if args.output else RESULTS_DIR / f"readability-{stamp}.json"
        out.write_text(
            json.dumps(
                {"meta": meta, "files": rows, "records": records, **outcome},
                ensure_ascii=False,
                indent=2,
                default=str,
            )
        )
        print(f"\nresults saved to {out}")
        if args.write_baseline:
            target = Path(args.write_baseline)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(
                json.dumps(baseline_of(rows, commit, meta), ensure_ascii=False, indent=2) + "\n"
            )
            print(f"baseline written to {target}")
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        if database_made and not args.keep_db:
            drop_bench_database(base_db, args.db_name)
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.readability",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--db-name", default="stt_bench_readability", help="throw-away database")
    parser.add_argument("--keep-db", action="store_true", help="do not drop it at the end")
    parser.add_argument("--redis-db", type=int, default=12, help="Redis database number (unused)")
    parser.add_argument("--long-copies", type=int, default=2, help="times each clip is in it")
    parser.add_argument("--gap", type=float, default=3.0, help="silence between clips, seconds")
    parser.add_argument(
        "--shuffled", type=int, default=3, help="more long files in other orders, 1-5 s gaps"
    )
    parser.add_argument(
        "--only", help="comma-separated parts of file ids to run (default: all), e.g. jfk,long"
    )
    parser.add_argument("--baseline", default=str(BASELINE), help="baseline JSON to compare to")
    parser.add_argument(
        "--write-baseline", metavar="PATH", help="store this run's per-file error rates there"
    )
    parser.add_argument(
        "--output", help="JSON file (default bench/results/readability-<time>.json)"
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, raise_interrupt)
    signal.signal(signal.SIGHUP, raise_interrupt)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
