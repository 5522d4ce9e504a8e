"""The live protocol, plain and socket-free: decoding client frames, parsing messages and
the start options. The consumer (consumer.py) only moves bytes and events around."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from transcription.speech.audio import AudioFrameError, f32le_to_float32, pcm_s16le_to_float32

SAMPLE_RATE = 16000
ENCODINGS = ("pcm_s16le", "f32le")
# One frame carries at most 10 s of audio: browsers send 20-250 ms, the original client ~1 s.
MAX_FRAME_SECONDS = 10
MAX_BINARY_FRAME = MAX_FRAME_SECONDS * SAMPLE_RATE * 4
MAX_TEXT_FRAME = MAX_BINARY_FRAME * 4 // 3 + 4096


class ProtocolError(Exception):
    """A message the server cannot use; answered with an ``error`` event, the socket stays open."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def event(self) -> dict[str, Any]:
        return {"type": "error", "code": self.code, "message": self.message}


def parse_message(text: str) -> dict[str, Any]:
    if len(text) > MAX_TEXT_FRAME:
        raise ProtocolError(
            "frame_too_large", f"text frames are limited to {MAX_TEXT_FRAME} characters"
        )
    try:
        message = json.loads(text)
    except ValueError as exc:
        raise ProtocolError("bad_json", f"not valid JSON: {exc}") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ProtocolError("bad_message", 'messages are JSON objects with a string "type"')
    return message


def decode_base64_f32(data: Any) -> np.ndarray:
    """The original client's audio: base64 of 16 kHz mono float32 little-endian PCM."""
    if not isinstance(data, str):
        raise ProtocolError("bad_audio", '"data" must be a base64 string')
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError("bad_base64", '"data" is not valid base64') from None
    return decode_binary(raw, "f32le")


def decode_binary(raw: bytes, encoding: str) -> np.ndarray:
    if len(raw) > MAX_BINARY_FRAME:
        raise ProtocolError(
            "frame_too_large",
            f"audio frames are limited to {MAX_FRAME_SECONDS} s ({MAX_BINARY_FRAME} bytes)",
        )
    try:
        if encoding == "pcm_s16le":
            return pcm_s16le_to_float32(raw)
        return f32le_to_float32(raw)
    except AudioFrameError as exc:
        raise ProtocolError("bad_frame", str(exc)) from None


@dataclass
class StartOptions:
    language: str
    encoding: str
    resume_session: str | None = None
    resume_last_seq: int = 0


def parse_start(message: dict[str, Any], default_language: str, languages) -> StartOptions:
    language = str(message.get("language") or default_language).lower()
    if language != "auto" and language not in languages:
        raise ProtocolError("bad_language", f"unknown language {language!r}")
    encoding = str(message.get("encoding") or "pcm_s16le").lower()
    if encoding not in ENCODINGS:
        raise ProtocolError("bad_encoding", f"encoding must be one of {', '.join(ENCODINGS)}")
    rate = message.get("sample_rate", SAMPLE_RATE)
    if rate != SAMPLE_RATE:
        raise ProtocolError("bad_sample_rate", f"send {SAMPLE_RATE} Hz mono audio (got {rate!r})")
    resume = message.get("resume")
    session, last_seq = None, 0
    if resume is not None:
        if not isinstance(resume, dict) or not isinstance(resume.get("session"), str):
            raise ProtocolError("bad_resume", 'resume is {"session": "<uuid>", "last_seq": N}')
        session = resume["session"]
        try:
            last_seq = int(resume.get("last_seq", 0))
        except (TypeError, ValueError):
            raise ProtocolError("bad_resume", "last_seq must be an integer") from None
    return StartOptions(language, encoding, session, last_seq)
