"""Settings come from the environment and a bad value stops start-up naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from sttproject.env import (
    envbool,
    envchoice,
    envfloat,
    envint,
    envlist,
    envurl,
    parse_database_url,
)
from tests.conftest import REPO_ROOT


def test_envbool_accepts_the_usual_spellings():
    for raw in ("1", "true", "YES", "on"):
        assert envbool("DEBUG", False, environ={"DEBUG": raw}) is True
    for raw in ("0", "false", "No", "off"):
        assert envbool("DEBUG", True, environ={"DEBUG": raw}) is False
    assert envbool("DEBUG", True, environ={}) is True
    assert envbool("DEBUG", False, environ={"DEBUG": "  "}) is False


def test_envbool_rejects_anything_else():
    with pytest.raises(ImproperlyConfigured, match="DEBUG='maybe'"):
        envbool("DEBUG", False, environ={"DEBUG": "maybe"})


def test_envint_and_envfloat_check_type_and_range():
    assert envint("UPLOAD_MAX_MB", 5, environ={"UPLOAD_MAX_MB": "42"}) == 42
    with pytest.raises(ImproperlyConfigured, match="UPLOAD_MAX_MB='4x'"):
        envint("UPLOAD_MAX_MB", 5, environ={"UPLOAD_MAX_MB": "4x"})
    with pytest.raises(ImproperlyConfigured, match="UPLOAD_MAX_MB=0 is below"):
        envint("UPLOAD_MAX_MB", 5, minimum=1, environ={"UPLOAD_MAX_MB": "0"})
    assert envfloat("VAD_THRESHOLD", 0.5, environ={"VAD_THRESHOLD": "0.3"}) == 0.3
    with pytest.raises(ImproperlyConfigured, match="VAD_THRESHOLD=1.5 is above"):
        envfloat("VAD_THRESHOLD", 0.5, maximum=0.95, environ={"VAD_THRESHOLD": "1.5"})
    with pytest.raises(ImproperlyConfigured, match="VAD_THRESHOLD='nan'"):
        envfloat("VAD_THRESHOLD", 0.5, environ={"VAD_THRESHOLD": "nan"})


def test_envchoice_is_case_insensitive_and_strict():
    assert (
        envchoice(
            "WHISPER_DEVICE", "auto", ("auto", "cpu", "cuda"), environ={"WHISPER_DEVICE": "CUDA"}
        )
        == "cuda"
    )
    with pytest.raises(
        ImproperlyConfigured, match="WHISPER_DEVICE='gpu' is not one of: auto, cpu, cuda"
    ):
        envchoice(
            "WHISPER_DEVICE", "auto", ("auto", "cpu", "cuda"), environ={"WHISPER_DEVICE": "gpu"}
        )


def test_envlist_and_envurl():
    assert envlist("ALLOWED_HOSTS", ["*"], environ={"ALLOWED_HOSTS": "a.example, b.example"}) == [
        "a.example",
        "b.example",
    ]
    with pytest.raises(ImproperlyConfigured, match="ALLOWED_HOSTS"):
        envlist("ALLOWED_HOSTS", ["*"], environ={"ALLOWED_HOSTS": " , "})
    assert envurl("REDIS_URL", "redis://x:1/0", ("redis",), environ={}) == "redis://x:1/0"
    with pytest.raises(ImproperlyConfigured, match="REDIS_URL='http://h:1'"):
        envurl("REDIS_URL", "redis://x:1/0", ("redis",), environ={"REDIS_URL": "http://h:1"})
    with pytest.raises(ImproperlyConfigured, match="invalid port"):
        envurl("VLLM_API_URL", "", ("http",), environ={"VLLM_API_URL": "http://h:99999/v1"})


def test_database_url_parsing():
    entry = parse_database_url(
        "DATABASE_URL", "postgresql://app:p%40ss@db.internal:6432/stt?sslmode=require"
    )
    assert entry["NAME"] == "stt"
    assert entry["USER"] == "app"
    assert entry["PASSWORD"] == "p@ss"
    assert entry["HOST"] == "db.internal"
    assert entry["PORT"] == "6432"
    assert entry["OPTIONS"] == {"sslmode": "require"}
    with pytest.raises(
        ImproperlyConfigured, match="DATABASE_URL='mysql://h/x' must be a postgresql"
    ):
        parse_database_url("DATABASE_URL", "mysql://h/x")
    with pytest.raises(ImproperlyConfigured, match="names no database"):
        parse_database_url("DATABASE_URL", "postgresql://h:5432/")


def _django_setup(**overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **overrides}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('ok')"],
        cwd=REPO_ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "sttproject.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("WHISPER_DEVICE", "gpu"),
        ("WHISPER_COMPUTE_TYPE", "int3"),
        ("KEYWORD_BACKEND", "openai"),
        ("VAD_THRESHOLD", "2"),
        ("VAD_MIN_SILENCE_MS", "soon"),
        ("DEBUG", "perhaps"),
        ("DATABASE_URL", "sqlite:///db.sqlite3"),
        ("REDIS_URL", "localhost:6379"),
        ("SECRET_KEY", "short"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(variable, value):
    result = _django_setup(**{variable: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert variable in result.stderr.splitlines()[-1]


def test_good_values_start_up():
    result = _django_setup(
        WHISPER_DEVICE="cpu", WHISPER_COMPUTE_TYPE="int8", KEYWORD_BACKEND="embedded"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_settings_follow_the_environment(settings):
    # The running test process got its URLs from the environment (make test sets them).
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    assert settings.REDIS_URL.startswith("redis://")
    assert settings.WHISPER_MODEL
    assert settings.KEYWORD_BACKEND in ("auto", "vllm", "embedded")
