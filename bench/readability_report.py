"""The readability benchmark's scoring and report (``bench/readability.py`` runs the paths):
word counts against plain faster-whisper, where the text ends against where the speech ends,
similarity with case and punctuation kept, CER against the baseline commit, sentences,
segments across long pauses, word timings, subtitle cues, and the issue's targets.

Everything here works on plain data: a segment is a dict with ``start``, ``end``, ``text``
and ``words`` (a list of ``{"word", "start", "end", "probability"}`` dicts, or None).
"""

from __future__ import annotations

import re
import unicodedata

from bench.cer import char_edits, edit_distance
from bench.common import fmt, pct

# Targets of issue 14.
MIN_WORD_RATIO = 0.95
MAX_END_GAP_S = 1.0
MIN_SIMILARITY = 0.95
LONG_PAUSE_S = 2.0
TIMING_TOLERANCE_S = 0.01
JFK_ID = "en_jfk_inaugural_11s"
JFK_SENTENCES = (1, 2)

# --- text ------------------------------------------------------------------------------


def joined_text(segments: list[dict]) -> str:
    """The transcript as one line: segments joined with single spaces, whitespace collapsed."""
    return " ".join(" ".join(s["text"] for s in segments).split())


def word_count(text: str) -> int:
    return len(text.split())


def similarity(a: str, b: str) -> float:
    """Character-level 1 - edit distance / the longer length, case and punctuation kept;
    two empty texts are the same."""
    longest = max(len(a), len(b))
    return 1.0 if not longest else 1.0 - edit_distance(a, b) / longest


_SENTENCE_END = re.compile(r"[.!?。？！]+(?=[\s\"')\]]|$)")


def sentence_count(text: str) -> int:
    """Sentences by their ending punctuation (``3.5`` and ``U.S.A`` do not end one); a last
    stretch of words with no ending punctuation counts as one more."""
    text = text.strip()
    if not text:
        return 0
    ends = list(_SENTENCE_END.finditer(text))
    tail = text[ends[-1].end() :] if ends else text
    return len(ends) + (1 if any(ch.isalnum() for ch in tail) else 0)


def english_words(text: str) -> list[str]:
    """Lower-case words of letters only (``don't`` -> ``dont``, digits dropped)."""
    text = unicodedata.normalize("NFKC", text).lower().replace("'", "").replace("\u2019", "")
    return re.sub(r"[^a-z]+", " ", text).split()


def error_rate(kind: str, language: str, reference: str, hypothesis: str) -> dict:
    """Korean (clips and long files): character edits on ``reference_nospace``, as-is and with
    Arabic numerals read as Sino-Korean (bench/cer.py). English: word edits on lower-case
    letters-only words (a WER; numerals are not converted). Totals add up over files."""
    if kind == "none" or not reference:
        return {}
    if language == "en":
        ref, hyp = english_words(reference), english_words(hypothesis)
        edits = edit_distance(ref, hyp)
        return {
            "metric": "wer",
            "ref_units": len(ref),
            "edits_asis": edits,
            "edits_numerals": edits,
        }
    units, asis, numerals = char_edits(reference, hypothesis)
    return {"metric": "cer", "ref_units": units, "edits_asis": asis, "edits_numerals": numerals}


def rates(scored: dict) -> tuple[float | None, float | None]:
    units = scored.get("ref_units")
    if not units:
        return None, None
    return scored["edits_asis"] / units, scored["edits_numerals"] / units


# --- timing --------------------------------------------------------------------------


def text_end(segments: list[dict]) -> float:
    """Where the text ends: the last word's end, or a segment's end where it has no words;
    0 when nothing was written."""
    end = 0.0
    for segment in segments:
        words = segment.get("words") or []
        end = max(end, max(w["end"] for w in words) if words else segment["end"])
    return end


def end_gap(speech_end: float | None, segments: list[dict]) -> float | None:
    """Seconds of speech after the text ends (negative: the text reaches past it)."""
    return None if speech_end is None else speech_end - text_end(segments)


def long_pauses(
    spans: list[tuple[float, float]], min_pause_s: float = LONG_PAUSE_S
) -> list[tuple[float, float]]:
    """The pauses between consecutive clips' speech in a built file that last at least
    ``min_pause_s``."""
    return [
        (a[1], b[0]) for a, b in zip(spans, spans[1:], strict=False) if b[0] - a[1] >= min_pause_s
    ]


def spanning_segments(segments: list[dict], pauses: list[tuple[float, float]]) -> list[dict]:
    """Segments that start before a pause and end after it, with the pause they span."""
    found = []
    for index, segment in enumerate(segments):
        for start, end in pauses:
            if segment["start"] < start and segment["end"] > end:
                found.append(
                    {
                        "segment": index,
                        "start": segment["start"],
                        "end": segment["end"],
                        "pause": [round(start, 3), round(end, 3)],
                        "text": segment["text"][:60],
                    }
                )
    return found


def timing_violations(segments: list[dict], tolerance: float = TIMING_TOLERANCE_S) -> list[str]:
    """Word timings that break the rules: a segment with text and no words, a word starting
    outside its segment (``tolerance`` either side), a start before the previous word's."""
    found = []
    previous = None
    for index, segment in enumerate(segments):
        words = segment.get("words") or []
        if not words:
            if segment["text"].strip():
                found.append(f"segment {index} has text and no word timings")
            continue
        for word in words:
            start = word["start"]
            if not segment["start"] - tolerance <= start <= segment["end"] + tolerance:
                found.append(
                    f"segment {index}: {word['word'].strip()!r} starts at {start:.3f}, "
                    f"outside [{segment['start']:.3f}, {segment['end']:.3f}]"
                )
            if previous is not None and start < previous:
                found.append(
                    f"segment {index}: {word['word'].strip()!r} starts at {start:.3f}, "
                    f"before the word before it ({previous:.3f})"
                )
            previous = start
    return found


# --- one file --------------------------------------------------------------------------


def summarise_file(record: dict, baseline: dict | None = None) -> dict:
    """The figures and flags of one file from its record (``bench/readability.py``)."""
    plat, plain = record["platform"], record["plain"]
    kind, language = record["kind"], record["language"]
    row: dict = {"id": record["id"], "kind": kind, "language": language}
    row["duration_s"] = record["duration_s"]
    texts = {}
    for name, run in (("platform", plat), ("plain", plain)):
        text = joined_text(run["segments"])
        texts[name] = text
        row[name] = {
            "wall_s": run["wall_s"],
            "status": run.get("status", "done"),
            "segments": len(run["segments"]),
            "words": word_count(text),
            "text": text,
            "end_gap_s": end_gap(record.get("speech_end_s"), run["segments"]),
            **error_rate(kind, language, record.get("reference", ""), text),
        }
        row[name]["rate_asis"], row[name]["rate_numerals"] = rates(row[name])
    p, q = row["platform"], row["plain"]
    speech = kind != "none"
    row["word_ratio"] = p["words"] / q["words"] if q["words"] else None
    row["flag_words"] = (
        speech and row["word_ratio"] is not None and row["word_ratio"] < MIN_WORD_RATIO
    )
    gap = p["end_gap_s"]
    row["flag_end"] = speech and gap is not None and gap > MAX_END_GAP_S
    row["similarity"] = similarity(texts["platform"], texts["plain"])
    row["flag_similarity"] = speech and row["similarity"] < MIN_SIMILARITY
    row["sentences"] = sentence_count(texts["platform"])
    pauses = [tuple(x) for x in record.get("pauses", [])]
    row["pauses"] = len(pauses)
    row["spanning"] = spanning_segments(plat["segments"], pauses)
    row["spanning_plain"] = len(spanning_segments(plain["segments"], pauses))
    row["timing_violations"] = timing_violations(plat["segments"])
    row["srt"] = record.get("srt")
    row["baseline"] = None
    row["flag_cer"] = False
    if baseline and speech and record["id"] in baseline.get("files", {}):
        base = baseline["files"][record["id"]]
        row["baseline"] = {
            k: base.get(k)
            for k in (
                "metric",
                "ref_units",
                "edits_asis",
                "edits_numerals",
                "rate_asis",
                "rate_numerals",
            )
        }
        row["flag_cer"] = worse_than(p, base)
    return row


def worse_than(now: dict, base: dict, slack: float = 1e-9) -> bool:
    """Is the error rate now above the baseline's, as-is or with numerals read?"""
    return any(
        now.get(key) is not None and base.get(key) is not None and now[key] > base[key] + slack
        for key in ("rate_asis", "rate_numerals")
    )


def pooled(scores: list[dict]) -> dict[str, tuple[float, float]]:
    """Error rates over files taken together, by metric (``cer``, ``wer``): edits summed over
    reference units summed, as-is and with numerals read."""
    totals: dict[str, list[int]] = {}
    for scored in scores:
        if not scored or scored.get("metric") is None or not scored.get("ref_units"):
            continue
        total = totals.setdefault(scored["metric"], [0, 0, 0])
        total[0] += scored["ref_units"]
        total[1] += scored["edits_asis"]
        total[2] += scored["edits_numerals"]
    return {metric: (t[1] / t[0], t[2] / t[0]) for metric, t in totals.items()}


def baseline_of(rows: list[dict], commit: str, meta: dict) -> dict:
    """Per-file platform error rates of a run, stored as the baseline later runs compare to."""
    files = {}
    for row in rows:
        p = row["platform"]
        if row["kind"] == "none" or p.get("metric") is None:
            continue
        files[row["id"]] = {
            key: p.get(key)
            for key in ("metric", "ref_units", "edits_asis", "edits_numerals", "rate_asis")
        } | {"rate_numerals": p.get("rate_numerals"), "text": p["text"]}
    return {"commit": commit, "meta": meta, "files": files}


# --- the report ----------------------------------------------------------------------


def _flag(on: bool) -> str:
    return " FLAG" if on else ""


def _rate(row: dict, path: str) -> str:
    r = row[path]
    if r.get("metric") is None:
        return "-"
    numerals = "" if r["metric"] == "wer" else f"/{pct(r['rate_numerals'])}"
    return f"{pct(r['rate_asis'])}{numerals}"


def report(rows: list[dict], meta: dict) -> dict:
    lines: list[str] = []
    add = lines.append
    add("")
    add(
        "Readability benchmark: platform (transcribe_transcript in-process, stored segments) "
        "vs plain faster-whisper (word_timestamps=True)"
    )
    add(
        f"commit {meta.get('commit')} | model {meta.get('model')} | cpu int8 | beam "
        f"{meta.get('beam_size')} | {meta.get('cores')} cores | baseline "
        f"{meta.get('baseline_commit') or 'none'}"
    )
    add(
        "error rate: Korean = CER on reference_nospace (as-is/numerals read); English = WER on "
        "lower-case letters-only words; end gap = last VAD speech end (less the pad) - text end"
    )
    add("")
    header = (
        f"{'file':<32} {'words p/pl':>10} {'ratio':>6} {'end gap':>7} {'similar':>7}  "
        f"{'err platform':>13} {'err plain':>13} {'err base':>13}  {'segs':>4}"
    )
    add(header)
    add("-" * len(header))
    for row in rows:
        p, q, base = row["platform"], row["plain"], row["baseline"]
        base_text = "-"
        if base and base.get("rate_asis") is not None:
            base_text = pct(base["rate_asis"]) + (
                "" if base["metric"] == "wer" else f"/{pct(base['rate_numerals'])}"
            )
        flags = [
            name
            for name, on in (
                ("words", row["flag_words"]),
                ("end", row["flag_end"]),
                ("similarity", row["flag_similarity"]),
                ("cer", row["flag_cer"]),
            )
            if on
        ]
        add(
            f"{row['id'][:32]:<32} {str(p['words']) + '/' + str(q['words']):>10} "
            f"{pct(row['word_ratio']):>6} {fmt(p['end_gap_s']):>7} "
            f"{pct(row['similarity']) if row['kind'] != 'none' else '-':>7}  "
            f"{_rate(row, 'platform'):>13} {_rate(row, 'plain'):>13} {base_text:>13}  "
            f"{p['segments']:>4}"
            + (f"  FLAG {', '.join(flags)}" if flags else "")
            + ("" if p["status"] == "done" else f"  PLATFORM {p['status']}")
        )
    add(
        f"FLAG: words < {MIN_WORD_RATIO:.0%} of plain's, end gap > {MAX_END_GAP_S:g} s, "
        f"similarity < {MIN_SIMILARITY:.0%}, error rate above the baseline's "
        "(no-speech clips: only their word count counts)"
    )

    add("")
    add("Texts where the platform and plain differ (speech files under 95% similar):")
    for row in rows:
        if row["flag_similarity"]:
            add(f"  {row['id']}\n    platform: {row['platform']['text'][:300]!r}")
            add(f"    plain:    {row['plain']['text'][:300]!r}")

    speech_rows = [r for r in rows if r["kind"] != "none"]
    eval_rows = [r for r in speech_rows if r["kind"] != "long"]
    long_rows = [r for r in rows if r["kind"] == "long"]
    none_rows = [r for r in rows if r["kind"] == "none"]
    jfk = next((r for r in rows if r["id"] == JFK_ID), None)

    add("")
    add(f"Long files: segments spanning a pause of {LONG_PAUSE_S:g} s or more, SRT cues")
    for row in long_rows:
        srt = row["srt"] or {}
        srt_text = (
            "SRT check not available"
            if not srt.get("available")
            else f"{srt.get('cues')} cues, {len(srt.get('violations', []))} violation(s)"
            + (f" (error: {srt['error']})" if srt.get("error") else "")
        )
        add(
            f"  {row['id']:<18} {row['pauses']} long pauses; spanned by {len(row['spanning'])} "
            f"platform segment(s) (plain: {row['spanning_plain']}); {srt_text}"
        )
        for hit in row["spanning"][:5]:
            add(
                f"      [{hit['start']:.2f}-{hit['end']:.2f}] over pause {hit['pause']}: {hit['text']!r}"
            )
        for violation in (srt.get("violations") or [])[:5]:
            add(f"      cue: {violation}")

    add("")
    add("Word timings (platform): violations per file")
    timing_total = 0
    for row in rows:
        found = row["timing_violations"]
        timing_total += len(found)
        if found:
            add(f"  {row['id']}: {len(found)}; first: {found[0]}")
    if not timing_total:
        add("  none")

    times = {
        path: sum(r[path]["wall_s"] for r in rows if r[path]["wall_s"] is not None)
        for path in ("platform", "plain")
    }
    ratio = times["platform"] / times["plain"] if times["plain"] else None
    add("")
    add(
        f"Wall time (info; bench-batch owns the time target): platform {fmt(times['platform'])} s, "
        f"plain {fmt(times['plain'])} s, ratio {fmt(ratio, '.3f')}"
    )

    targets: list[dict] = []

    def target(name: str, ok: bool | None, detail: str) -> None:
        verdict = "PASS" if ok else ("FAIL" if ok is not None else "N/A")
        targets.append({"target": name, "result": verdict, "detail": detail})
        add(f"  {verdict:<4}  {name}: {detail}")

    def ids(selected: list[dict]) -> str:
        return ", ".join(r["id"] for r in selected) or "none"

    add("")
    add("Targets (issue 14, Done when)")
    few = [r for r in speech_rows if r["flag_words"]]
    early = [r for r in speech_rows if r["flag_end"]]
    target(
        f"every file has >= {MIN_WORD_RATIO:.0%} of plain's words and text ending <= "
        f"{MAX_END_GAP_S:g} s before its last speech",
        not few and not early,
        f"fewer words: {ids(few)}; text ending early: {ids(early)}",
    )
    unlike = [r for r in eval_rows if r["flag_similarity"]]
    low = min((r["similarity"] for r in eval_rows), default=None)
    target(
        f"every eval clip >= {MIN_SIMILARITY:.0%} similar to plain (case, punctuation kept)",
        not unlike if eval_rows else None,
        f"lowest {pct(low)}; under: {ids(unlike)}",
    )
    # The clips of a language taken together: a one-word change on a clip of 19 letters moves
    # its CER by 5 points, and the similarity target asks for plain's words, wrong ones too.
    compared = [r for r in eval_rows if r["baseline"]]
    now = pooled([r["platform"] for r in compared])
    before = pooled([r["baseline"] for r in compared])
    worse_metric = [
        m
        for m in now
        if m in before and any(a > b + 1e-9 for a, b in zip(now[m], before[m], strict=True))
    ]
    worse = [r for r in eval_rows if r["flag_cer"]]
    worse_long = [r for r in long_rows if r["flag_cer"]]

    def together(now: dict, before: dict) -> str:
        return "; ".join(
            f"{m.upper()} {pct(now[m][0])}/{pct(now[m][1])} (before {pct(before[m][0])}/"
            f"{pct(before[m][1])})"
            for m in sorted(now)
            if m in before
        )

    figures = together(now, before)
    long_base = [r for r in long_rows if r["baseline"]]
    long_figures = together(
        pooled([r["platform"] for r in long_base]), pooled([r["baseline"] for r in long_base])
    )
    target(
        f"eval clips' error rate, each language's clips together, no worse than "
        f"{meta.get('baseline_commit') or 'baseline'}",
        (not worse_metric) if compared else None,
        (
            f"{figures}; worse: {', '.join(worse_metric) or 'none'}; per file (info) worse: "
            f"{ids(worse)}; long files (info) worse: {ids(worse_long)}, together "
            f"{long_figures or '-'}"
        )
        if compared
        else "no baseline file",
    )
    target(
        f"jfk.wav is {JFK_SENTENCES[0]} or {JFK_SENTENCES[1]} sentences",
        None if jfk is None else jfk["sentences"] in JFK_SENTENCES,
        "not run" if jfk is None else f"{jfk['sentences']}: {jfk['platform']['text']!r}",
    )
    spans = sum(len(r["spanning"]) for r in long_rows)
    target(
        f"long files: no segment spans a pause of {LONG_PAUSE_S:g} s or more",
        spans == 0 if long_rows else None,
        f"{spans} segment(s) over {sum(r['pauses'] for r in long_rows)} long pauses "
        f"(plain: {sum(r['spanning_plain'] for r in long_rows)})",
    )
    noisy = sum(r["platform"]["words"] for r in none_rows)
    target(
        "zero words on the no-speech clips",
        noisy == 0 if none_rows else None,
        f"{noisy} word(s) (plain: {sum(r['plain']['words'] for r in none_rows)})",
    )
    target(
        "word timings: every word starts inside its segment, starts monotone",
        timing_total == 0 if rows else None,
        f"{timing_total} violation(s) in {sum(1 for r in rows if r['timing_violations'])} file(s)",
    )
    srts = [r["srt"] or {} for r in long_rows]
    available = bool(srts) and all(s.get("available") for s in srts)
    cue_total = sum(len(s.get("violations") or []) for s in srts)
    errors = [s["error"] for s in srts if s.get("error")]
    target(
        "SRT of the long files passes the cue rules (build_cues + cue_violations)",
        (cue_total == 0 and not errors) if available else None,
        (
            f"{sum(s.get('cues') or 0 for s in srts)} cues, {cue_total} violation(s)"
            + (f", errors: {errors[0]}" if errors else "")
        )
        if available
        else "not available (transcription/web/subtitles.py has no build_cues/cue_violations)",
    )
    target(
        "make bench-batch still meets its targets",
        None,
        "measured by make bench-batch, not here"
        + (f" ({meta['batch']})" if meta.get("batch") else ""),
    )
    failed = [r["id"] for r in rows if r["platform"]["status"] != "done"]
    if failed:
        add(f"  FAIL  platform runs that did not end done: {failed}")
    print("\n".join(lines), flush=True)
    return {"targets": targets, "times": times, "time_ratio": ratio, "printed": lines}
