from __future__ import annotations

import os
import re
from collections import namedtuple
from dataclasses import dataclass

import pytest

from transcription.speech.hallucination import (
    PHANTOM_PATTERNS,
    FilterConfig,
    Verdict,
    compact,
    compression_ratio,
    filter_segments,
    judge,
    speech_ratio,
)


@dataclass
class Seg:
    text: str
    avg_logprob: float | None = -0.3
    no_speech_prob: float | None = 0.05
    compression_ratio: float | None = None
    start: float = 0.0
    end: float = 3.0
    words: list | None = None
    temperature: float | None = None


# Figures below are as measured with whisper-base (int8, CPU) on the shared evaluation set:
# real speech scored avg_logprob -0.22..-0.55 and no_speech_prob <= 0.18.
STRONG = {"avg_logprob": -0.31, "no_speech_prob": 0.02}

PHANTOMS = [
    " 시청해주셔서 감사합니다.",
    " 끝까지 시청해 주셔서 감사합니다!",
    " 시청 감사합니다",
    " 구독과 좋아요 부탁드립니다.",
    " 좋아요와 구독, 알림설정까지 부탁드려요",
    " MBC 뉴스 이덕영입니다.",
    " KBS 뉴스 김민지입니다",
    " 자막 제공 및 광고",
    " 한글자막 by 한효주",
    " 한국어 자막",
    " 이 영상은 유료광고를 포함하고 있습니다.",
    " 다음 영상에서 만나요~",
    " 감사합니다.",
    " 수고하셨습니다.",
    " 이 영상은",
    " [음악]",
    " Thanks for watching!",
    " Thank you for watching.",
    " Subtitles by the Amara.org community",
    " Please subscribe to my channel.",
    " Don't forget to like and subscribe!",
    " See you in the next video.",
    " Transcribed by ESO, translated by —",
    " you",
    " Music",
    " www.mooji.org",
    " ご視聴ありがとうございました",
    " 字幕由Amara.org社区提供",
    " Untertitel im Auftrag des ZDF, 2017",
    " Sous-titres réalisés para la communauté d'Amara.org",
]

MEANINGFUL_THANKS = " 오늘 발표를 들어주셔서 감사합니다 다음 주에는 예산을 논의하겠습니다"


def test_there_are_enough_real_phantom_patterns():
    assert len(PHANTOM_PATTERNS) >= 37
    for pattern in PHANTOM_PATTERNS:
        re.compile(pattern)
        assert pattern == pattern.lower(), "patterns run on lower-cased compact text"


@pytest.mark.parametrize("text", PHANTOMS)
def test_phantom_with_weak_whisper_evidence_is_dropped(text):
    # Typical numbers for Whisper writing boilerplate over noise: unsure, and half sure of silence.
    verdict = judge(Seg(text, avg_logprob=-0.92, no_speech_prob=0.45))
    assert verdict == Verdict(False, verdict.reason)
    assert "phantom" in verdict.reason or "confidence" in verdict.reason


@pytest.mark.parametrize("text", PHANTOMS)
def test_phantom_without_vad_support_is_dropped_even_when_whisper_is_sure(text):
    verdict = judge(Seg(text, **STRONG), speech_ratio=0.05)
    assert not verdict.keep


@pytest.mark.parametrize("text", [" 시청해주셔서 감사합니다.", " 감사합니다.", " Thank you."])
def test_phantom_phrase_really_spoken_is_kept(text):
    # A person saying it: clear audio, confident text, VAD speech throughout.
    assert judge(Seg(text, **STRONG), speech_ratio=1.0).keep
    # Without VAD, Whisper's confidence alone is enough.
    assert judge(Seg(text, **STRONG)).keep


def test_real_sentence_containing_thanks_is_kept():
    segment = Seg(MEANINGFUL_THANKS, avg_logprob=-0.28, no_speech_prob=0.03)
    assert judge(segment, speech_ratio=1.0) == Verdict(True, "kept")
    # Even with middling evidence: the phantom words are a small part of the sentence.
    assert judge(Seg(MEANINGFUL_THANKS, avg_logprob=-0.8, no_speech_prob=0.35)).keep


@pytest.mark.parametrize(
    ("text", "avg_logprob", "no_speech_prob"),
    [
        # Measured on the evaluation clips.
        (
            " And so my fellow Americans, ask not what your country can do for you, ask what you "
            "can do for your country.",
            -0.276,
            0.088,
        ),
        (" Stuffed into you, his belly counseled him.", -0.549, 0.030),
        (
            " 한잔의 커피가 소비자에게 전해지기 위해서는 여러 차례의 공정을 거쳐야 한다.",
            -0.306,
            0.005,
        ),
        (" 본격적인 공모와 개발 작업에 들어갔다.", -0.459, 0.181),
        (" 네, 네, 네. 알겠습니다.", -0.4, 0.1),  # three times is still a person talking
        (" 1,000,000원을 지급합니다.", -0.35, 0.05),  # repeated digits are not a loop
        (" Hmmm, let me think.", -0.5, 0.1),
    ],
)
def test_normal_speech_is_kept(text, avg_logprob, no_speech_prob):
    segment = Seg(text, avg_logprob=avg_logprob, no_speech_prob=no_speech_prob)
    assert judge(segment) == Verdict(True, "kept")
    assert judge(segment, speech_ratio=0.95) == Verdict(True, "kept")


@pytest.mark.parametrize(
    "text",
    [
        " 감사합니다 감사합니다 감사합니다 감사합니다 감사합니다 감사합니다",
        " 감사합니다감사합니다감사합니다감사합니다",
        " 네네네네네네",
        " I'm sorry, I'm sorry, I'm sorry, I'm sorry.",  # measured: empty.wav, guards off
        " 이 정도는, 이 정도는, 이 정도는, 이 정도는, 이 정도는, 이 정도는, 이 정도는",
    ],
)
def test_loops_are_dropped_even_with_confident_numbers(text):
    # Loops are where Whisper is most sure of itself (the fireplace loop scored -0.08).
    verdict = judge(Seg(text, avg_logprob=-0.08, no_speech_prob=0.2))
    assert not verdict.keep
    assert "loop" in verdict.reason


def test_loop_tail_is_collapsed_and_the_sentence_kept():
    text = " 회의를 시작하겠습니다 첫 번째 안건은 내년도 예산입니다 네 네 네 네 네 네 네"
    verdict = judge(Seg(text))
    assert verdict.keep
    assert verdict.text == " 회의를 시작하겠습니다 첫 번째 안건은 내년도 예산입니다 네"


def test_high_compression_ratio_is_dropped():
    # A whole sentence repeated: no back-to-back loop of a short unit, but zlib sees it.
    text = " 오늘은 날씨가 정말 좋아서 공원에 산책을 나갔는데 사람이 많았습니다." * 3
    assert compression_ratio(text) > 2.4
    verdict = judge(Seg(text, avg_logprob=-0.2, no_speech_prob=0.1, compression_ratio=2.85))
    assert not verdict.keep
    assert "compression ratio" in verdict.reason


def test_window_compression_ratio_alone_spares_a_clean_sentence():
    # faster-whisper gives every segment of a window the window's ratio; a loop later in the
    # window must not take the clean sentence before it down, but it does count as doubt.
    clean = Seg(" 현재 백화점과 영화관 등은 오픈해 영업하고 있다", compression_ratio=3.1, **STRONG)
    assert judge(clean).keep
    phantom = Seg(" 시청해주셔서 감사합니다.", compression_ratio=3.1, **STRONG)
    assert not judge(phantom).keep


@pytest.mark.parametrize(
    ("text", "avg_logprob", "no_speech_prob", "reason"),
    [
        # Whisper's own rule: sure of silence and unsure of the text.
        (" 이 노래는", -1.449, 0.835, "no speech"),
        # Measured on the piano clip with faster-whisper's default guard on: ns 0.43 slips by.
        (" 이 노래는", -1.791, 0.433, "very low confidence"),
        (" K Again", -3.678, 0.957, "no speech"),
        (" 한 번 더.", -1.754, 0.25, "very low confidence"),
    ],
)
def test_weak_whisper_evidence_alone_drops(text, avg_logprob, no_speech_prob, reason):
    verdict = judge(Seg(text, avg_logprob=avg_logprob, no_speech_prob=no_speech_prob))
    assert not verdict.keep
    assert verdict.reason.startswith(reason)


# Recorded on the piano clip with faster-whisper's defaults (ko, beam 5, temperature
# fallback on, no VAD) under 30 seeds: every window failed Whisper's checks at temperature 0,
# so it sampled, and some samples it kept scored near its own -1.0 log-probability bar. The
# second passed the whole filter (seed 14 here); the first passed alone, six times in a row
# (seed 27), caught only by the repeated-run rule. The third has the no-speech probability of
# the phantom that broke a clean clone's run on another machine (0.39; its text was not kept).
SAMPLED_ON_PIANO = [
    (" 아", -1.066, 0.365, 1.0),
    (
        " ㄴㄷㄷㄷㄷㄹㄹㄹㄷㄹㄷㄷㄷㄷㄹㄱㄹㄹㄹㄹㄹㄹㄹㄹㄱㄹㄹㄹㄹㄹㄹㄹㄹㄹㄹㄹㄹㄹㄹ It's not difficult"
        " to sing your songs but you can sing them separately",
        -0.999,
        0.365,
        0.8,
    ),
    (" 어땠어요?", -0.95, 0.39, 1.0),
]


@pytest.mark.parametrize(("text", "avg_logprob", "no_speech_prob", "temperature"), SAMPLED_ON_PIANO)
def test_a_sampled_decode_half_sure_of_silence_is_dropped(
    text, avg_logprob, no_speech_prob, temperature
):
    segment = Seg(text, avg_logprob, no_speech_prob, temperature=temperature)
    verdict = judge(segment)
    assert not verdict.keep
    assert "likely silence" in verdict.reason
    # Either sign alone with the no-speech doubt is enough: a row stored without the
    # temperature, or a temperature-0 decode as unsure of itself.
    assert not judge(Seg(text, avg_logprob=avg_logprob, no_speech_prob=no_speech_prob)).keep
    assert not judge(Seg(text, -0.5, no_speech_prob, temperature=temperature)).keep
    # VAD hearing speech throughout outweighs it: a poor decode of real speech is kept.
    assert judge(segment, speech_ratio=1.0).keep


def test_real_speech_decoded_by_sampling_is_kept():
    # A fallback decode of speech Whisper hears clearly: no doubt of silence.
    segment = Seg(" 본격적인 공모와 개발 작업에 들어갔다.", -0.7, 0.03, temperature=0.4)
    assert judge(segment).keep


def test_strong_vad_support_rescues_a_low_confidence_transcript():
    # Heavily accented or noisy real speech: a poor transcript beats a silent gap.
    segment = Seg(
        " 그는 이리저리 피하면서 길 한 옆으로 걸어갔다", avg_logprob=-1.6, no_speech_prob=0.1
    )
    assert not judge(segment).keep
    assert judge(segment, speech_ratio=0.9).keep


def test_no_acoustic_support_needs_whisper_doubt_too():
    segment = Seg(" 노래 가사처럼 들리는 문장입니다", avg_logprob=-0.3, no_speech_prob=0.05)
    # VAD misses singing and whispering; a confident transcript there is kept...
    assert judge(segment, speech_ratio=0.0).keep
    # ...but not when Whisper itself doubted it.
    doubtful = Seg(" 노래 가사처럼 들리는 문장입니다", avg_logprob=-0.75, no_speech_prob=0.05)
    assert judge(doubtful, speech_ratio=1.0).keep
    assert "acoustic" in judge(doubtful, speech_ratio=0.0).reason


def test_word_probabilities_count_as_evidence():
    word = namedtuple("Word", "start end word probability")
    shaky = [
        word(0.0, 0.5, " Thanks", 0.21),
        word(0.5, 0.8, " for", 0.3),
        word(0.8, 1.2, " watching", 0.4),
    ]
    assert judge(Seg(" Thanks for watching", **STRONG)).keep
    assert not judge(Seg(" Thanks for watching", words=shaky, **STRONG)).keep


def test_unknown_figures_skip_their_rules():
    # Our Segment rows store NULL where Whisper gave no figure.
    assert judge(Seg(" 안녕하세요", avg_logprob=None, no_speech_prob=None)).keep
    assert not judge(Seg(" 네네네네네네", avg_logprob=None, no_speech_prob=None)).keep
    assert judge(Seg(" 감사합니다", avg_logprob=float("nan"), no_speech_prob=None)).keep


def test_speech_ratio():
    spans = [(0.0, 1.0), (2.0, 4.0)]
    assert speech_ratio(0.0, 4.0, spans) == pytest.approx(0.75)
    assert speech_ratio(1.0, 2.0, spans) == 0.0
    assert speech_ratio(2.5, 3.5, spans) == 1.0
    assert speech_ratio(3.0, 3.0, spans) == 1.0
    assert speech_ratio(5.0, 6.0, []) == 0.0


def test_compact_ignores_spacing_punctuation_and_case():
    assert compact(" Thanks, for WATCHING!! ") == "thanksforwatching"
    assert compact("시청 해 주셔서… 감사합니다.") == "시청해주셔서감사합니다"


def test_filter_segments_keeps_order_types_and_drops_empties():
    whisper_like = namedtuple(
        "Segment", "start end text avg_logprob no_speech_prob compression_ratio words"
    )
    segments = [
        whisper_like(0.0, 2.0, " 첫 번째 문장입니다.", -0.3, 0.02, 1.0, None),
        whisper_like(2.0, 3.0, " ...", -0.3, 0.02, 1.0, None),
        whisper_like(3.0, 4.0, "", -0.3, 0.02, 1.0, None),
        whisper_like(4.0, 5.0, " ♪ ♪", -0.3, 0.02, 1.0, None),
        whisper_like(5.0, 8.0, " 시청해주셔서 감사합니다.", -0.95, 0.5, 0.9, None),
        whisper_like(8.0, 12.0, " 두 번째 문장이에요 네 네 네 네 네 네", -0.3, 0.02, 1.9, ["w"]),
    ]
    kept = filter_segments(segments)
    assert [s.text for s in kept] == [" 첫 번째 문장입니다.", " 두 번째 문장이에요 네"]
    assert kept[0] is segments[0]
    assert type(kept[1]) is whisper_like
    assert kept[1].words is None  # the word list no longer matched the collapsed text
    assert segments[5].text.endswith("네 네 네")  # the input is not modified

    as_dicts = [s._asdict() for s in segments]
    assert [s["text"] for s in filter_segments(as_dicts)] == [s.text for s in kept]


def test_filter_segments_uses_vad_spans():
    segments = [
        Seg(" 감사합니다.", start=0.0, end=2.0, **STRONG),
        Seg(" 다음 안건으로 넘어가겠습니다.", start=10.0, end=12.0, **STRONG),
        Seg(" 감사합니다.", start=20.0, end=22.0, **STRONG),
    ]
    # Speech only where the real sentences are: the first "감사합니다" was over silence.
    kept = filter_segments(segments, speech_spans=[(9.8, 12.1), (19.9, 22.0)])
    assert [s.start for s in kept] == [10.0, 20.0]


def test_filter_segments_drops_loops_spread_over_segments():
    loop = [Seg(" 감사합니다.", start=i, end=i + 1, **STRONG) for i in range(6)]
    tail = [Seg(" 회의를 마치겠습니다.", start=6, end=8, **STRONG)]
    assert [s.text for s in filter_segments(loop + tail)] == [" 회의를 마치겠습니다."]
    assert len(filter_segments(loop[:2] + tail)) == 3  # twice is a person


def test_config_is_adjustable():
    segment = Seg(" 안녕하세요", avg_logprob=-1.2, no_speech_prob=0.1)
    assert judge(segment).keep
    assert not judge(segment, config=FilterConfig(min_avg_logprob=-1.0)).keep


# --- Real Whisper output ---------------------------------------------------------------------

NO_SPEECH_CLIPS = [
    "nonspeech_fireplace_cc0_30s",
    "nonspeech_goldberg_piano_cc0",
    "nonspeech_picovoice_leopard_empty",
]
# vad_filter is off throughout: the filter must stand on its own. "guards off" also disables
# faster-whisper's own no-speech check (as a caller passing other options might), and
# temperature 0 skips the fallback decodes, which keeps the test to about half a minute.
# Where the fallback runs it samples: CTranslate2's generator is seeded before each decode so
# a run is repeatable on a machine (across machines and thread counts the draws still differ).
GUARDS_OFF = {"no_speech_threshold": None, "log_prob_threshold": None, "temperature": 0.0}
DECODINGS = {
    "ko beam": {"language": "ko", "beam_size": 5, **GUARDS_OFF},
    "ko greedy": {"language": "ko", "beam_size": 1, **GUARDS_OFF},
    "auto beam": {"language": None, "beam_size": 5, **GUARDS_OFF},
}
# faster-whisper's defaults emit nothing on the fireplace and empty clips (its own guard
# works there, after ~12 s of fallback decodes) but let samples through on the piano: "이 노래는",
# and with seeds 14 and 27 here the two SAMPLED_ON_PIANO phantoms above.
DEFAULTS = {"language": "ko", "beam_size": 5}
PIANO_SEEDS = (0, 14, 27)


def _transcribe(whisper, audio, seed: int = 0, **options) -> list:
    import ctranslate2

    ctranslate2.set_random_seed(seed)
    return list(whisper.transcribe(audio, vad_filter=False, **options)[0])


@pytest.fixture(scope="module")
def whisper():
    from django.conf import settings
    from faster_whisper import WhisperModel

    model_dir = settings.EMBEDDED_MODEL_DIR
    if not (model_dir / "model.bin").exists():
        pytest.fail(f"{model_dir} missing: run `python manage.py prepare_model`")
    return WhisperModel(
        str(model_dir), device="cpu", compute_type="int8", cpu_threads=os.cpu_count() or 1
    )


def _vad_spans(audio) -> list[tuple[float, float]]:
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    return [
        (span["start"] / 16000, span["end"] / 16000)
        for span in get_speech_timestamps(audio, VadOptions())
    ]


@pytest.mark.slow
@pytest.mark.parametrize("clip_id", NO_SPEECH_CLIPS)
def test_whisper_output_on_no_speech_clips_is_all_removed(whisper, eval_clip, clip_id):
    from transcription.speech.audio import decode_audio

    audio = decode_audio(eval_clip(clip_id)[0])
    spans = _vad_spans(audio)
    decodings = {name: (0, options) for name, options in DECODINGS.items()}
    if clip_id == "nonspeech_goldberg_piano_cc0":
        decodings.update({f"defaults, seed {seed}": (seed, DEFAULTS) for seed in PIANO_SEEDS})
    emitted = []
    for name, (seed, options) in decodings.items():
        segments = _transcribe(whisper, audio, seed, **options)
        emitted += [(name, s.text, s.avg_logprob, s.no_speech_prob) for s in segments]
        assert filter_segments(segments) == [], (name, segments)
        assert filter_segments(segments, speech_spans=spans) == [], (name, segments)
    # Keep the test honest: Whisper did hallucinate here. Measured (texts vary with the
    # thread count): 30 s loops of "이 정도는," / "아, 아," / "1,5,5,5" on the fireplace,
    # "이 노래는" x14 and "Music" on the piano, "ㄷㄷㄷ..." and "I'm sorry" x4 on empty.wav.
    assert emitted


@pytest.mark.slow
@pytest.mark.parametrize(
    "clip_id", ["ko_zeroth_104_003_0294", "ko_picovoice_leopard_test_ko", "en_jfk_inaugural_11s"]
)
def test_whisper_output_on_speech_is_kept(whisper, eval_clip, clip_id):
    from transcription.speech.audio import decode_audio

    path, entry = eval_clip(clip_id)
    audio = decode_audio(path)
    spans = _vad_spans(audio)
    for name, options in (("defaults", DEFAULTS), ("beam", DECODINGS["ko beam"])):
        options = {**options, "language": entry["lang"]}
        segments = _transcribe(whisper, audio, **options)
        assert segments, name
        for kept in (filter_segments(segments), filter_segments(segments, speech_spans=spans)):
            assert kept == segments, name
            text = compact("".join(s.text for s in kept))
            reference = compact(entry["reference_nospace"])
            # Whisper-base gets most of it right; the filter must not have eaten any of it.
            shared = sum(1 for ch in set(reference) if ch in text)
            assert shared / len(set(reference)) > 0.8, (name, text)
