"""Building test recordings from the shared evaluation clips."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from transcription.speech.audio import decode_audio

RATE = 16000


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return path


def speech_bounds(
    audio: np.ndarray, frame_s: float = 0.02, level: float = 0.05
) -> tuple[float, float]:
    """First and last moment of speech in a clip, by energy: 20 ms frames whose RMS exceeds
    5% of the loudest frame's. Independent of the VAD under test."""
    frame = int(frame_s * RATE)
    frames = audio[: len(audio) // frame * frame].reshape(-1, frame)
    rms = np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1))
    loud = np.flatnonzero(rms > level * rms.max())
    return loud[0] * frame_s, (loud[-1] + 1) * frame_s


def long_file_with_gaps(
    path: Path, clip_paths: list[Path], gap_s: float = 4.0, lead_s: float = 2.0
):
    """Clips separated by digital silence; returns the path and where each clip's speech
    lies in the file, as (start, end) seconds."""
    pieces = [np.zeros(int(lead_s * RATE), dtype=np.float32)]
    spans = []
    position = lead_s
    for clip in clip_paths:
        audio = decode_audio(clip)
        first, last = speech_bounds(audio)
        spans.append((position + first, position + last))
        pieces += [audio, np.zeros(int(gap_s * RATE), dtype=np.float32)]
        position += len(audio) / RATE + gap_s
    write_wav(path, np.concatenate(pieces))
    return path, spans
