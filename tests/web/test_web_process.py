"""The web process stays light: it knows Whisper's languages from a plain constant and never
imports faster-whisper or CTranslate2 (workers own the models)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO_ROOT
from transcription.speech.languages import LANGUAGE_NAMES, WHISPER_LANGUAGES

HEAVY = ("faster_whisper", "ctranslate2")

WEB_PROCESS = """
import json, os, sys
import django

django.setup()
import sttproject.urls, sttproject.routing, sttproject.asgi  # noqa: E401,F401

heavy = sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})
print(json.dumps(heavy))
"""


def test_the_language_list_is_faster_whispers():
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    assert tuple(WHISPER_LANGUAGES) == tuple(_LANGUAGE_CODES)
    # Every code has the name OpenAI's verbose_json reports.
    assert set(WHISPER_LANGUAGES) <= set(LANGUAGE_NAMES)


def test_the_web_process_imports_no_speech_model_library():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "sttproject.settings"}
    result = subprocess.run(
        [sys.executable, "-c", WEB_PROCESS.format(heavy=set(HEAVY))],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
