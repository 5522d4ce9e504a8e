"""The audio each live-benchmark client streams (bench/live.py): the evaluation clips on
one timeline with silence between them, where each clip lies, and a client's run record.

End of speech is found from the audio alone, as ``tests/audio_files.speech_bounds`` finds
it: the end of the last 20 ms frame whose RMS is above 5% of the clip's loudest frame.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
EVAL_DIR = Path(os.environ.get("EVAL_DIR") or REPO_ROOT.parent / "shared" / "eval")

RATE = 16000
FRAME_S = 0.1
FRAME = int(FRAME_S * RATE)
LEAD_S = 1.0
GAP_S = 1.5
# End of speech by energy, as tests/audio_files.speech_bounds defines it.
EOS_FRAME_S = 0.02
EOS_LEVEL = 0.05


@dataclass
class Piece:
    """One clip on a client's timeline."""

    id: str
    kind: str  # "ko" or "none"
    reference: str  # reference_nospace; "" for no speech
    start: float  # seconds on the stream timeline
    end: float
    frame_rms: np.ndarray = field(repr=False)  # RMS of 20 ms frames from ``start``

    def end_of_speech(self, lo: float, hi: float) -> float | None:
        """End of the last loud 20 ms frame lying inside [lo, hi] (timeline seconds)."""
        loud = self.frame_rms > EOS_LEVEL * self.frame_rms.max()
        first = max(int(np.ceil((lo - self.start) / EOS_FRAME_S - 1e-9)), 0)
        last = min(int(np.floor((hi - self.start) / EOS_FRAME_S + 1e-9)), loud.size)
        hits = np.flatnonzero(loud[first:last])
        if hits.size == 0:
            return None
        return self.start + (first + hits[-1] + 1) * EOS_FRAME_S


@dataclass
class Stream:
    """A client's audio: ``pcm`` as sent, ``audio`` the same samples as the server decodes
    them (int16 / 32768), and where each clip lies."""

    pcm: np.ndarray = field(repr=False)
    audio: np.ndarray = field(repr=False)
    pieces: list[Piece]

    @property
    def frames(self) -> int:
        return self.pcm.size // FRAME

    @property
    def duration(self) -> float:
        return self.pcm.size / RATE


def quantise(samples: np.ndarray) -> np.ndarray:
    return (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")


def load_clips() -> tuple[list[dict], dict[str, np.ndarray]]:
    from transcription.speech.audio import decode_audio

    manifest = EVAL_DIR / "manifest.jsonl"
    if not manifest.exists():
        raise SystemExit(f"evaluation set not found at {EVAL_DIR}; set EVAL_DIR")
    entries = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    entries = [e for e in entries if e["lang"] in ("ko", "none")]
    audio = {e["id"]: quantise(decode_audio(EVAL_DIR / e["file"])) for e in entries}
    return entries, audio


def build_stream(entries: list[dict], audio: dict[str, np.ndarray], rotate: int) -> Stream:
    korean = [e for e in entries if e["lang"] == "ko"]
    if korean:
        rotate %= len(korean)
        korean = korean[rotate:] + korean[:rotate]
    order = korean + [e for e in entries if e["lang"] == "none"]
    parts = [np.zeros(int(LEAD_S * RATE), dtype="<i2")]
    position = parts[0].size
    pieces = []
    frame = int(EOS_FRAME_S * RATE)
    for entry in order:
        pcm = audio[entry["id"]]
        samples = pcm.astype(np.float64) / 32768.0
        usable = samples[: samples.size // frame * frame].reshape(-1, frame)
        pieces.append(
            Piece(
                id=entry["id"],
                kind=entry["lang"],
                reference=entry["reference_nospace"] if entry["lang"] == "ko" else "",
                start=position / RATE,
                end=(position + pcm.size) / RATE,
                frame_rms=np.sqrt((usable**2).mean(axis=1)),
            )
        )
        gap = np.zeros(int(GAP_S * RATE), dtype="<i2")
        parts += [pcm, gap]
        position += pcm.size + gap.size
    pcm = np.concatenate(parts)
    pad = -pcm.size % FRAME
    pcm = np.concatenate([pcm, np.zeros(pad, dtype="<i2")])
    return Stream(pcm=pcm, audio=pcm.astype(np.float32) / 32768.0, pieces=pieces)


@dataclass
class ClientRun:
    index: int
    stream: Stream
    session: str = ""
    t0_wall: float = 0.0
    sent_wall: np.ndarray | None = field(default=None, repr=False)
    max_send_late_s: float = 0.0
    stop_wall: float | None = None
    stopped_wall: float | None = None
    done_wall: float | None = None
    complete: bool = False
    events: list[tuple[float, dict]] = field(default_factory=list, repr=False)
    errors: list[dict] = field(default_factory=list)


# --- uploads queued behind a live stream -------------------------------------------------

UPLOAD_LEAD_S = 2.0
UPLOAD_GAP_S = 4.0


def build_upload(
    entries: list[dict], audio: dict[str, np.ndarray], seconds: float, rotate: int
) -> np.ndarray:
    """About ``seconds`` of Korean speech for an upload: the Korean clips from the
    ``rotate``-th on, over and over, each followed by 4 s of silence (as
    ``tests/audio_files.long_file_with_gaps`` lays them out), padded with silence to exactly
    ``seconds``. No clip is cut: a clip that would not fit ends the file."""
    korean = [e for e in entries if e["lang"] == "ko"]
    if not korean:
        raise ValueError("no Korean clips to build an upload from")
    total = int(round(seconds * RATE))
    gap = np.zeros(int(UPLOAD_GAP_S * RATE), dtype="<i2")
    parts = [np.zeros(int(UPLOAD_LEAD_S * RATE), dtype="<i2")]
    size = parts[0].size
    k = rotate
    while True:
        pcm = audio[korean[k % len(korean)]["id"]]
        if size + pcm.size > total:
            break
        parts += [pcm, gap]
        size += pcm.size + gap.size
        k += 1
    out = np.concatenate(parts)[:total]
    return np.concatenate([out, np.zeros(total - out.size, dtype="<i2")])


def write_wav(path: Path, pcm: np.ndarray) -> Path:
    """16 kHz mono 16-bit WAV of ``pcm`` (int16 samples)."""
    import wave

    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(pcm.astype("<i2").tobytes())
    return path
