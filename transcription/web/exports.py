"""Rendering a transcript as SRT, WebVTT, plain text or JSON for download.

Plain functions over plain data: segments are anything with ``start``, ``end`` and ``text``
(model rows, faster-whisper segments, dicts), so the same code serves the download view,
the REST API and tests without a database. SRT and WebVTT are cut into subtitle cues
(subtitles.py); TXT and JSON keep one entry per segment.

A segment may name its ``speaker`` (a name, or a row whose ``str`` is one; rows should be
loaded with their speaker): WebVTT has voice spans for it (``<v Name>``), TXT writes
``Name: text``, JSON a ``speaker`` field (and the transcript's ``speakers`` when given). SRT
has no such markup; see ``render_srt``. Text is the corrected text where people corrected
it; JSON also shows the machine's (``original_text``) and ``edited``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from transcription.web.subtitles import Cue, build_cues, speaker_name


@dataclass(frozen=True)
class ExportFormat:
    content_type: str
    file_extension: str


FORMATS: dict[str, ExportFormat] = {
    "srt": ExportFormat("application/x-subrip; charset=utf-8", "srt"),
    "vtt": ExportFormat("text/vtt; charset=utf-8", "vtt"),
    "txt": ExportFormat("text/plain; charset=utf-8", "txt"),
    # JSON is UTF-8 by definition (RFC 8259), so no charset parameter.
    "json": ExportFormat("application/json", "json"),
}

_META_FIELDS = ("id", "title", "language", "duration", "source", "status", "created_at")
_ARROW = re.compile(r"--+>")
# The subtitle limits a caller may choose (query string ?max_chars=&max_duration=).
MAX_CHARS_RANGE = (10, 200)
MAX_DURATION_RANGE = (1.0, 30.0)
DEFAULT_MAX_DURATION = 7.0


def _field(item: Any, name: str, default: Any = None) -> Any:
    if isinstance(item, Mapping):
        return item.get(name, default)
    return getattr(item, name, default)


def _milliseconds(seconds: float) -> int:
    value = float(seconds)
    if not math.isfinite(value):
        raise ValueError(f"timestamp must be a finite number of seconds, got {seconds!r}")
    # Rounding to whole milliseconds once, before splitting into fields, avoids 59.9996 s
    # being written as ":59,1000".
    return max(0, round(value * 1000))


def format_timestamp(seconds: float, decimal_marker: str = ",") -> str:
    """``HH:MM:SS,mmm`` (SRT) or with ``decimal_marker="."`` (WebVTT).

    Hours are at least two digits and grow past 99 rather than wrapping; negative times
    clamp to zero.
    """
    total_ms = _milliseconds(seconds)
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, ms = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal_marker}{ms:03d}"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _times(segment: Any) -> tuple[float, float]:
    start = float(_field(segment, "start", 0.0) or 0.0)
    end = float(_field(segment, "end", start) or start)
    # Players reject cues that end before they start; a zero-length cue is still valid.
    return start, max(start, end)


def _cue_text(cue: Cue) -> str:
    # Cue lines never hold a line break (a blank line would end the cue); a "-->" in one
    # would be read as a timing line.
    return "\n".join(_ARROW.sub("→", line) for line in cue.lines)


def render_srt(
    segments: Iterable[Any], *, max_chars: int | None = None, max_duration: float = 7.0
) -> str:
    """SubRip: numbered subtitle cues (subtitles.build_cues), comma decimal marker.

    SubRip has no markup for a speaker (players show ``<v>`` literally, and bracket or dash
    conventions differ by country), so the name is written as text, ``Name: `` before the
    first words of each change of speaker, as a transcript would: the reader sees who
    starts speaking without a name on every cue of a long turn, and the name counts in the
    line's length like any word."""
    blocks = []
    cues = build_cues(segments, max_chars=max_chars, max_duration=max_duration, speaker_names=True)
    for number, cue in enumerate(cues, start=1):
        timing = f"{format_timestamp(cue.start)} --> {format_timestamp(cue.end)}"
        blocks.append(f"{number}\n{timing}\n{_cue_text(cue)}\n")
    return "\n".join(blocks)


def _vtt_escape(text: str) -> str:
    # Cue text is markup in WebVTT: a bare "<" starts a tag and "&" an entity.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_vtt(
    segments: Iterable[Any],
    title: str | None = None,
    *,
    max_chars: int | None = None,
    max_duration: float = 7.0,
) -> str:
    """WebVTT: ``WEBVTT`` header (with the title on it, if any), subtitle cues (each with
    its speaker's voice span ``<v Name>``), dot decimal marker."""
    header = "WEBVTT"
    if title:
        header += " - " + _ARROW.sub("→", _one_line(title))
    blocks = [header + "\n"]
    for cue in build_cues(segments, max_chars=max_chars, max_duration=max_duration):
        timing = f"{format_timestamp(cue.start, '.')} --> {format_timestamp(cue.end, '.')}"
        text = _vtt_escape(_cue_text(cue))
        if cue.speaker:
            # A voice span: players may show or style the name; it is not counted in the
            # line. Its annotation ends at ">", so the name is escaped like cue text.
            text = f"<v {_vtt_escape(cue.speaker)}>{text}"
        blocks.append(f"{timing}\n{text}\n")
    return "\n".join(blocks)


def render_txt(segments: Iterable[Any], timestamps: bool = False) -> str:
    """One line per segment, ``Name: text`` where it has a speaker; with ``timestamps``,
    each prefixed ``[HH:MM:SS.mmm - HH:MM:SS.mmm]``."""
    lines = []
    for segment in segments:
        text = _one_line(_field(segment, "text", "") or "")
        if not text:
            continue
        speaker = speaker_name(segment)
        if speaker:
            text = f"{speaker}: {text}"
        if timestamps:
            start, end = _times(segment)
            text = f"[{format_timestamp(start, '.')} - {format_timestamp(end, '.')}] {text}"
        lines.append(text)
    return "\n".join(lines) + ("\n" if lines else "")


def _json_value(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return value


def _meta(transcript_meta: Any) -> dict[str, Any]:
    if isinstance(transcript_meta, Mapping):
        return {key: _json_value(value) for key, value in transcript_meta.items()}
    # A model row: only the fields worth publishing, never its whole __dict__.
    return {
        name: _json_value(_field(transcript_meta, name))
        for name in _META_FIELDS
        if hasattr(transcript_meta, name)
    }


def _words(segment: Any) -> list[dict[str, Any]] | None:
    words = _field(segment, "words")
    if not words:
        return None
    return [
        {name: _field(word, name) for name in ("word", "start", "end", "probability")}
        for word in words
    ]


def _keyword(keyword: Any) -> dict[str, Any]:
    if isinstance(keyword, str):
        return {"word": keyword}
    return {
        "word": _field(keyword, "word"),
        "category": _field(keyword, "category"),
        "importance": _field(keyword, "importance"),
    }


def _speaker(speaker: Any) -> dict[str, Any]:
    return {name: _field(speaker, name) for name in ("id", "label", "name")}


def render_json(
    transcript_meta: Any,
    segments: Iterable[Any],
    keywords: Iterable[Any] | None = None,
    speakers: Iterable[Any] | None = None,
) -> str:
    """Transcript metadata, its full text, segments (each with its ``speaker``'s name or
    null, and ``edited`` with the machine's ``original_text`` where people corrected it) and,
    when given, keywords and speakers (``id``, ``label``, ``name``), as UTF-8 JSON."""
    items = []
    for index, segment in enumerate(segments):
        start, end = _times(segment)
        edited = bool(_field(segment, "edited", False))
        item: dict[str, Any] = {
            "index": index,
            "start": round(start, 3),
            "end": round(end, 3),
            "text": str(_field(segment, "text", "") or "").strip(),
            "speaker": speaker_name(segment),
            "edited": edited,
            "original_text": _field(segment, "original_text") if edited else None,
        }
        words = _words(segment)
        if words is not None:
            item["words"] = words
        items.append(item)
    document = _meta(transcript_meta)
    document["text"] = " ".join(item["text"] for item in items if item["text"])
    document["segments"] = items
    if keywords is not None:
        document["keywords"] = [_keyword(keyword) for keyword in keywords]
    if speakers is not None:
        document["speakers"] = [_speaker(speaker) for speaker in speakers]
    # ensure_ascii=False keeps Korean readable in the file instead of \\uXXXX escapes.
    return json.dumps(document, ensure_ascii=False, indent=2, default=str) + "\n"


def render(
    fmt: str,
    transcript_meta: Any,
    segments: Iterable[Any],
    keywords: Iterable[Any] | None = None,
    *,
    timestamps: bool = False,
    max_chars: int | None = None,
    max_duration: float | None = None,
    speakers: Iterable[Any] | None = None,
) -> tuple[str, str, str]:
    """Render in ``fmt`` (srt, vtt, txt, json): returns (content, content_type, extension).

    ``transcript_meta`` is a mapping or an object with id, title, language, duration;
    ``timestamps`` applies to txt only, ``max_chars`` (characters a subtitle line holds, by
    default 42 for Latin text and 20 for Korean) and ``max_duration`` (seconds a cue lasts,
    by default 7) to srt and vtt only, ``speakers`` (the transcript's) to json only. Raises
    ValueError naming the formats on offer.
    """
    key = (fmt or "").strip().lower()
    if key not in FORMATS:
        allowed = ", ".join(FORMATS)
        raise ValueError(f"unknown export format {fmt!r}; choose one of: {allowed}")
    segments = list(segments)
    if max_duration is None:
        max_duration = DEFAULT_MAX_DURATION
    limits = {"max_chars": max_chars, "max_duration": max_duration}
    if key == "srt":
        content = render_srt(segments, **limits)
    elif key == "vtt":
        content = render_vtt(segments, title=_field(transcript_meta, "title"), **limits)
    elif key == "txt":
        content = render_txt(segments, timestamps=timestamps)
    else:
        content = render_json(transcript_meta, segments, keywords, speakers)
    spec = FORMATS[key]
    return content, spec.content_type, spec.file_extension


def subtitle_limits(params: Mapping[str, Any]) -> dict[str, Any]:
    """``max_chars`` and ``max_duration`` for ``render`` from query parameters: absent or
    empty means the default. Raises ValueError naming the parameter and its allowed range."""
    limits: dict[str, Any] = {}
    for name, parse, (low, high), what in (
        ("max_chars", int, MAX_CHARS_RANGE, "a whole number"),
        ("max_duration", float, MAX_DURATION_RANGE, "a number of seconds"),
    ):
        raw = str(params.get(name) or "").strip()
        if not raw:
            continue
        try:
            value = parse(raw)
        except ValueError:
            value = math.nan
        if not low <= value <= high:  # NaN compares false: refused too
            raise ValueError(f"{name} must be {what} from {low:g} to {high:g}, got {raw!r}")
        limits[name] = value
    return limits
