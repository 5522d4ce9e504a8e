"""Dropping Whisper hallucinations: one filter for the batch and the live path.

Whisper is a language model with ears. Given noise, music or silence it still writes the
text most likely to follow, which is the boilerplate of its training subtitles ("시청해주셔서
감사합니다", "Thanks for watching") or a phrase looped until the window ends. Two kinds of
evidence tell these apart from speech, and every rule here needs one of them:

* Whisper's own numbers for the segment: ``no_speech_prob`` (how sure it was that the window
  held no speech), ``avg_logprob`` (mean token log-probability of the text) and
  ``compression_ratio`` (how repetitive the text is).
* Acoustic support: the share of the segment's time that VAD marked as speech.

A phrase on the phantom list is never dropped for its words alone: a person who really says
"감사합니다" is heard clearly (good log-probability, low no-speech probability, VAD speech).

Thresholds were chosen against the shared evaluation set (whisper-base, int8, CPU, vad_filter
off, faster-whisper's own no-speech guard both on and off, its temperature fallback seeded
30 ways). Real speech segments there scored avg_logprob -0.22 to -0.55 and no_speech_prob at
most 0.18; everything emitted on the no-speech clips scored avg_logprob below -0.87, or
no_speech_prob at least 0.36 (with a sampled decode), or was a loop.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import re
import unicodedata
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

S = TypeVar("S")


@dataclass(frozen=True)
class FilterConfig:
    """Thresholds of the filter; each comment says why it sits where it does."""

    # Whisper's own pairing (faster-whisper's defaults for dropping a window as silence): the
    # model thinks the window is silent AND is unsure of its text. Kept identical so that a
    # caller who disabled faster-whisper's guard, or passes through text from elsewhere,
    # gets the same decision it would have made.
    no_speech_prob: float = 0.6
    no_speech_logprob: float = -1.0
    # Below this mean token log-probability (mean token probability under ~0.22) the decoder
    # was guessing; even its temperature fallbacks gave up. Real speech in the evaluation set
    # never went below -0.55. Speech that VAD clearly supports is still kept: a poor
    # transcript of real speech is better than a silent gap.
    min_avg_logprob: float = -1.5
    # OpenAI's threshold for "too repetitive": above it Whisper retries at a higher temperature,
    # but the last attempt is emitted anyway, so loops reach us with ratios of 3 to 25.
    # Measured on the segment's own text; Whisper's per-window figure is only a doubt.
    max_compression_ratio: float = 2.4
    # A loop is a unit (a syllable, word or phrase) repeated back to back at least this many
    # times. People do say "네, 네, 네" or "정말 정말": three stays speech, four is a loop.
    loop_min_repeats: int = 4
    # A single letter repeated is a loop only from here ("네네네네네"); this spares
    # stretched words ("hmmm") and digits ("1,000,000" never counts).
    loop_min_char_repeats: int = 5
    # When loops make up this share of a segment's letters the segment is nothing but a loop
    # and is dropped; below it the loops are collapsed to one copy and the rest is kept.
    loop_drop_share: float = 0.5
    # A phantom phrase must make up this share of the segment's letters before the segment
    # is treated as a phantom; a real sentence that merely contains "감사합니다" is not one.
    phantom_min_share: float = 0.5
    # Evidence is "weak" for a phantom if any of these holds. They are stricter than the
    # general rules because boilerplate on its own is already suspicious: real speech scored
    # no_speech_prob <= 0.18 and avg_logprob >= -0.55, phantoms >= 0.43 or <= -0.88.
    phantom_no_speech_prob: float = 0.3
    phantom_max_logprob: float = -0.7
    # With VAD: less than half the segment's time being speech is weak support for a phantom.
    phantom_min_speech_ratio: float = 0.5
    # With word timestamps: a mean word probability below this is weak evidence too.
    phantom_min_word_probability: float = 0.5
    # With VAD: a segment that is almost all non-speech is dropped when Whisper also had
    # any doubt (the phantom thresholds above). A confident transcript over audio VAD missed
    # (singing, whispering, speech under music) is kept.
    min_speech_ratio: float = 0.1
    # With VAD: this much speech rescues even a low log-probability transcript.
    strong_speech_ratio: float = 0.5
    # Whisper half-sure the window is silent (real speech scored <= 0.18) and unsure of its
    # text: below this log-probability, close to Whisper's own -1.0 bar for a failed decode,
    # or decoded by sampling at all (temperature > 0: the temperature-0 decode already
    # failed Whisper's checks). On music and noise that is where faster-whisper's fallback
    # lands, with ns 0.36-0.43 and log-probabilities just above -1.0 (the piano clip).
    # Without VAD support such a segment is dropped; with it, it is kept.
    unsure_no_speech_prob: float = 0.3
    unsure_logprob: float = -0.9


DEFAULT_CONFIG = FilterConfig()


@dataclass(frozen=True)
class Verdict:
    """The decision on one segment. ``text`` is set when the segment is kept with new text."""

    keep: bool
    reason: str
    text: str | None = None


# Patterns run on compact text: NFKC, lower-case, everything but letters and digits removed,
# so "시청 해주셔서 감사합니다!" and "시청해주셔서감사합니다" both read 시청해주셔서감사합니다 and the
# patterns tolerate any spacing or punctuation. ^...$ marks phrases that are phantoms only
# when they are the whole segment (short words that real sentences contain).
PHANTOM_PATTERNS: tuple[str, ...] = (
    # Korean YouTube/broadcast boilerplate, the most common Korean hallucinations.
    r"(끝까지)?시청(해|하여)?주셔서(정말)?(감사|고맙)(합니다|드립니다|습니다)",
    r"시청(해주신|하신)?(모든)?분들?(께|에게)?감사",
    r"시청감사(합니다|드립니다)",
    r"구독(과|이랑|하고|및)?좋아요",
    r"좋아요(와|랑|하고|및)?구독",
    r"구독(버튼|부탁|해주세요|눌러)",
    r"좋아요(버튼|부탁|눌러)",
    r"알림설정(까지|도|부탁)?",
    r"(mbc|kbs|sbs|ytn|jtbc|mbn|obs)뉴스[가-힣]{2,4}(입니다|기자입니다)",
    r"(채널a|tv조선|연합뉴스tv?)[가-힣]{2,4}(입니다|기자입니다)",
    r"^[가-힣]{2,4}기자(입니다|가보도합니다)$",
    r"자막(제공|제작|편집)(및광고)?",
    r"(한국어|한글)자막",
    r"자막by[가-힣a-z]{0,4}",  # credits name a person: "한글자막 by 한효주"
    r"(영상)?(편집|번역|제작)(자)?by",
    r"유료광고(를)?포함",
    r"이영상은[가-힣]*(제작|지원|협찬|포함)",
    r"제작지원",
    r"다음(영상|시간|편)에서?(또)?(만나요|뵙겠습니다|봬요|뵐게요)",
    r"오늘(영상|방송)?은여기까지",
    r"^(이영상은|이노래는)$",
    r"^(감사|고맙)(합니다|습니다)$",
    r"^수고(하셨습니다|하셨어요|많으셨습니다)$",
    r"^(음악|박수|웃음|노래)$",
    # English, the phrases OpenAI's and faster-whisper's issue trackers keep meeting.
    r"than(ks|kyou)forwatching",
    r"than(ks|kyou)(so|very)much(for)?watching",
    r"(please|pleasedont?forgetto)?(likeand)?subscribe(tomychannel|tothechannel|toourchannel)?",
    r"hitthe(notification)?bell",
    # Credit lines name someone after the phrase; the name is part of the phantom.
    r"subtitlesby\w{0,24}",
    r"amaraorg",
    r"(transcri(bed|ption)|captions?|captioned|translated)by\w{0,24}",
    r"seeyou(in|on)?(the)?next(video|time|one)",
    r"i(ll|will)seeyou(guys)?(in|on)?(the)?next",
    r"^(you|thankyou|thankyouverymuch|bye|byebye|music|applause|theend)$",
    r"^www[a-z0-9]+(com|org|net|kr|tv)$",
    # Other languages Whisper drifts into on Korean noise (language misdetection).
    r"ご視聴ありがとうございました",
    r"チャンネル登録",
    r"字幕由amaraorg社区提供",
    r"请不吝点赞订阅转发打赏",
    r"untertitel(imauftrag|der|von)\w{0,24}",
    r"soustitr(es|age)\w{0,40}",
)

_PHANTOM_RE = [re.compile(pattern) for pattern in PHANTOM_PATTERNS]
_NON_WORD = re.compile(r"[\W_]+")


@functools.lru_cache(maxsize=8)
def _loop_re(min_repeats: int) -> re.Pattern[str]:
    # A unit of 1 to 30 letters (the shortest that fits) followed by more copies of itself.
    more = max(1, min_repeats - 1)
    return re.compile(r"(.{1,30}?)\1{" + str(more) + ",}")


def compact(text: str) -> str:
    """Letters and digits only, lower-cased and NFKC-normalised: what the rules compare."""
    return _NON_WORD.sub("", unicodedata.normalize("NFKC", text).lower())


def compression_ratio(text: str) -> float:
    """Whisper's repetitiveness measure: UTF-8 length over zlib-compressed length."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def speech_ratio(start: float, end: float, speech_spans: Iterable[tuple[float, float]]) -> float:
    """Share of [start, end] covered by VAD speech spans (seconds, same timeline, disjoint)."""
    duration = end - start
    if duration <= 0:
        # A zero-length segment is speech if it sits inside a speech span.
        return float(any(s <= start <= e for s, e in speech_spans))
    covered = sum(max(0.0, min(end, e) - max(start, s)) for s, e in speech_spans)
    return min(1.0, covered / duration)


def _field(segment: Any, name: str) -> Any:
    if isinstance(segment, Mapping):
        return segment.get(name)
    return getattr(segment, name, None)


def _number(value: Any) -> float | None:
    # Our own rows store NULL where Whisper gave no figure; NaN is as good as unknown.
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _loops(text: str, config: FilterConfig) -> tuple[int, str]:
    """Letters inside loops, and the text with every loop collapsed to its first copy."""
    letters = [(i, ch) for i, ch in enumerate(text) if ch.isalnum()]
    # One character in, one out, so positions in ``flat`` map back to ``text``.
    flat = "".join(ch.lower() if len(ch.lower()) == 1 else ch for _, ch in letters)
    looped = 0
    cuts: list[tuple[int, int]] = []
    for match in _loop_re(config.loop_min_repeats).finditer(flat):
        unit = match.group(1)
        repeats = len(match.group(0)) // len(unit)
        if not any(ch.isalpha() for ch in unit):
            continue
        if len(unit) == 1 and repeats < config.loop_min_char_repeats:
            continue
        looped += len(match.group(0))
        # Keep the original text up to the end of the first copy, cut through the last copy.
        keep_until = letters[match.start() + len(unit) - 1][0] + 1
        cut_until = letters[match.end() - 1][0] + 1
        cuts.append((keep_until, cut_until))
    collapsed = text
    for begin, finish in reversed(cuts):
        collapsed = collapsed[:begin] + collapsed[finish:]
    return looped, collapsed


def _phantom_share(flat: str) -> float:
    hit = [False] * len(flat)
    for pattern in _PHANTOM_RE:
        for match in pattern.finditer(flat):
            hit[match.start() : match.end()] = [True] * (match.end() - match.start())
    return sum(hit) / len(flat)


def _doubts(
    segment: Any, no_speech: float | None, logprob: float | None, config: FilterConfig
) -> list[str]:
    """Whisper's own signs of doubt about a segment, worded for the verdict."""
    signs = []
    if no_speech is not None and no_speech >= config.phantom_no_speech_prob:
        signs.append(f"no_speech_prob {no_speech:.2f}")
    if logprob is not None and logprob <= config.phantom_max_logprob:
        signs.append(f"avg_logprob {logprob:.2f}")
    words = _field(segment, "words") or []
    probabilities = [p for p in (_number(_field(w, "probability")) for w in words) if p is not None]
    if probabilities:
        mean = sum(probabilities) / len(probabilities)
        if mean < config.phantom_min_word_probability:
            signs.append(f"word probability {mean:.2f}")
    return signs


def judge(
    segment: Any, speech_ratio: float | None = None, config: FilterConfig = DEFAULT_CONFIG
) -> Verdict:
    """Decide whether a segment is speech worth keeping.

    ``segment`` is anything with ``text`` and, where known, ``avg_logprob``,
    ``no_speech_prob``, ``compression_ratio``, ``words`` and ``temperature`` (the decode's,
    as faster-whisper reports it; attributes or mapping keys);
    missing figures skip the rules that need them. ``speech_ratio`` is the share of the
    segment's time VAD marked as speech (see ``speech_ratio()``), or None without VAD.
    """
    text = _field(segment, "text") or ""
    flat = compact(text)
    if not flat:
        return Verdict(False, "no words (empty or punctuation only)")
    no_speech = _number(_field(segment, "no_speech_prob"))
    logprob = _number(_field(segment, "avg_logprob"))
    temperature = _number(_field(segment, "temperature"))

    looped, collapsed = _loops(text, config)
    if looped and looped / len(flat) >= config.loop_drop_share:
        return Verdict(False, f"repetition loop ({looped} of {len(flat)} letters)")
    # faster-whisper reports one compression ratio per 30 s window, shared by all segments
    # cut from it, so a loop at the end of a window would condemn the real sentences before
    # it. The segment's own text decides; the window's figure only counts as doubt.
    own_ratio = compression_ratio(collapsed)
    if own_ratio > config.max_compression_ratio:
        return Verdict(False, f"compression ratio {own_ratio:.2f} (repetitive text)")
    window_ratio = _number(_field(segment, "compression_ratio"))

    if (
        no_speech is not None
        and logprob is not None
        and no_speech >= config.no_speech_prob
        and logprob < config.no_speech_logprob
    ):
        return Verdict(
            False, f"no speech (no_speech_prob {no_speech:.2f}, avg_logprob {logprob:.2f})"
        )
    supported = speech_ratio is not None and speech_ratio >= config.strong_speech_ratio
    if logprob is not None and logprob < config.min_avg_logprob and not supported:
        return Verdict(False, f"very low confidence (avg_logprob {logprob:.2f})")

    doubts = _doubts(segment, no_speech, logprob, config)
    if window_ratio is not None and window_ratio > config.max_compression_ratio and not looped:
        doubts.append(f"window compression ratio {window_ratio:.2f}")
    if speech_ratio is not None and speech_ratio < config.min_speech_ratio and doubts:
        reasons = ", ".join([f"speech ratio {speech_ratio:.2f}", *doubts])
        return Verdict(False, f"no acoustic support ({reasons})")
    weak = list(doubts)
    if speech_ratio is not None and speech_ratio < config.phantom_min_speech_ratio:
        weak.append(f"speech ratio {speech_ratio:.2f}")
    share = _phantom_share(compact(collapsed))
    if share >= config.phantom_min_share and weak:
        return Verdict(False, f"phantom phrase with weak evidence ({', '.join(weak)})")

    if no_speech is not None and no_speech >= config.unsure_no_speech_prob and not supported:
        unsure = []
        if logprob is not None and logprob <= config.unsure_logprob:
            unsure.append(f"avg_logprob {logprob:.2f}")
        if temperature:
            unsure.append(f"sampled at temperature {temperature:.1f}")
        if unsure:
            reasons = ", ".join([f"no_speech_prob {no_speech:.2f}", *unsure])
            return Verdict(False, f"unsure text over likely silence ({reasons})")

    if looped:
        return Verdict(True, "kept, repetition collapsed", collapsed)
    return Verdict(True, "kept")


def _with_text(segment: S, text: str) -> S:
    # Collapsing a loop leaves a word list that no longer matches the text; dropping it is
    # honest, and only the rare collapsed segment loses its word timings.
    if isinstance(segment, Mapping):
        return {**segment, "text": text, "words": None}  # type: ignore[return-value]
    if hasattr(segment, "_replace"):
        changes = {"text": text}
        if "words" in segment._fields:  # type: ignore[attr-defined]
            changes["words"] = None
        return segment._replace(**changes)  # type: ignore[attr-defined]
    if dataclasses.is_dataclass(segment) and not isinstance(segment, type):
        names = {f.name for f in dataclasses.fields(segment)}
        return dataclasses.replace(
            segment, text=text, **({"words": None} if "words" in names else {})
        )
    segment.text = text  # type: ignore[attr-defined]
    if hasattr(segment, "words"):
        segment.words = None  # type: ignore[attr-defined]
    return segment


def filter_segments(
    segments: Iterable[S],
    speech_spans: Sequence[tuple[float, float]] | None = None,
    config: FilterConfig = DEFAULT_CONFIG,
) -> list[S]:
    """Keep the segments ``judge`` accepts, in order, with loops collapsed where needed.

    ``speech_spans`` are VAD speech intervals in seconds on the segments' timeline; without
    them only Whisper's own evidence is used. Namedtuples, dataclasses and mappings are
    copied when their text changes; other objects are updated in place.
    """
    kept: list[S] = []
    for segment in segments:
        ratio = None
        if speech_spans is not None:
            start = _number(_field(segment, "start")) or 0.0
            end = _number(_field(segment, "end")) or start
            ratio = speech_ratio(start, end, speech_spans)
        verdict = judge(segment, speech_ratio=ratio, config=config)
        if not verdict.keep:
            logger.debug("dropped segment %r: %s", _field(segment, "text"), verdict.reason)
            continue
        kept.append(segment if verdict.text is None else _with_text(segment, verdict.text))
    return _drop_repeated_runs(kept, config)


def _drop_repeated_runs(segments: list[S], config: FilterConfig) -> list[S]:
    # Whisper also loops across segments: "감사합니다." cut into ten timestamped segments in a
    # row. Each looks innocent alone; the run is the same loop the single-segment rule drops.
    result: list[S] = []
    run: list[S] = []
    run_key = None
    for segment in [*segments, None]:
        key = None if segment is None else compact(_field(segment, "text") or "")
        if run and key == run_key:
            run.append(segment)
            continue
        if len(run) >= config.loop_min_repeats:
            logger.debug("dropped %d repeated segments %r", len(run), run_key)
        else:
            result.extend(run)
        run, run_key = ([] if segment is None else [segment]), key
    return result
