"""Settings come from the environment and a bad value stops start-up naming the variable."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from sttproject.env import (
    envbool,
    envchoice,
    envcredentials,
    envdevices,
    envfloat,
    envhost,
    envint,
    envlist,
    envport,
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


def test_envport_envhost():
    assert envport("WEB_PORT", 5000, environ={}) == 5000
    assert envport("WEB_PORT", 5000, environ={"WEB_PORT": "8080"}) == 8080
    for bad in ("0", "65536", "http"):
        with pytest.raises(ImproperlyConfigured, match="WEB_PORT"):
            envport("WEB_PORT", 5000, environ={"WEB_PORT": bad})
    for good in ("0.0.0.0", "127.0.0.1", "::", "[::1]", "web-1.internal"):
        assert envhost("WEB_HOST", "0.0.0.0", environ={"WEB_HOST": good}) == good
    for bad in ("0.0.0.0:5000", "http://host", "two hosts"):
        with pytest.raises(ImproperlyConfigured, match="WEB_HOST"):
            envhost("WEB_HOST", "0.0.0.0", environ={"WEB_HOST": bad})


def test_envdevices_reads_gpu_lists_as_cuda_does():
    def devices(value, **kw):
        return envdevices("STT_GPUS", environ={} if value is None else {"STT_GPUS": value}, **kw)

    assert devices(None) is None
    assert devices("") is None  # STT_GPUS: empty means not chosen
    assert devices("", empty_is_unset=False) == []  # CUDA_VISIBLE_DEVICES: empty hides all
    assert devices("0, 2") == ["0", "2"]
    assert devices("none") == devices("CPU") == devices("-1") == []
    assert devices("1,-1,0") == ["1"]  # CUDA stops at the first -1
    assert devices("GPU-8a1b2c3d-0000-1111-2222-333344445555") == [
        "GPU-8a1b2c3d-0000-1111-2222-333344445555"
    ]
    for bad in ("0;1", "gpu0", "0,,1", "all"):
        with pytest.raises(ImproperlyConfigured, match="STT_GPUS="):
            devices(bad)


def test_envcredentials_checks_pairs_without_echoing_passwords():
    assert envcredentials("FLOWER_BASIC_AUTH", environ={}) is None
    assert envcredentials("FLOWER_BASIC_AUTH", environ={"FLOWER_BASIC_AUTH": "a:p1, b:p:2"}) == [
        "a:p1",
        "b:p:2",
    ]
    for bad in ("admin", "admin:", ":secret", "a:p1,,b:p2", "a:p1,hunter2"):
        with pytest.raises(ImproperlyConfigured, match="FLOWER_BASIC_AUTH: item") as caught:
            envcredentials("FLOWER_BASIC_AUTH", environ={"FLOWER_BASIC_AUTH": bad})
        assert "p1" not in str(caught.value) and "secret" not in str(caught.value)


SETTINGS_FILE = REPO_ROOT / "sttproject" / "settings.py"


def _load_settings(monkeypatch, **overrides: str) -> dict:
    """Run settings.py afresh in this process with ``overrides`` in the environment.

    The settings module is plain code at import time; running it again is what a new
    process does at start-up, without a process (django.conf.settings is untouched).
    """
    for name, value in overrides.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(SETTINGS_FILE))


BAD_VALUES = [
    ("WHISPER_DEVICE", "gpu"),
    ("WHISPER_COMPUTE_TYPE", "int3"),
    ("KEYWORD_BACKEND", "openai"),
    ("DIARIZATION_BACKEND", "pyannote 3.1"),
    ("VAD_THRESHOLD", "2"),
    ("VAD_MIN_SILENCE_MS", "soon"),
    ("DEBUG", "perhaps"),
    ("DATABASE_URL", "sqlite:///db.sqlite3"),
    ("REDIS_URL", "localhost:6379"),
    ("SECRET_KEY", "short"),
    ("WORKER_WARMUP", "later"),
    ("WEB_PORT", "70000"),
    ("FLOWER_PORT", "flower"),
    ("LOG_LEVEL", "verbose"),
    ("LIVE_PARTIAL_QUEUE", "stt-partial"),
    ("LIVE_STOP_WAIT_S", "30s"),
    ("LOGIN_MAX_FAILURES", "0"),
    ("LOGIN_LOCKOUT_S", "15m"),
    ("TRUSTED_PROXIES", "proxy.local"),
]


@pytest.mark.parametrize(("variable", "value"), BAD_VALUES)
def test_a_bad_value_stops_the_settings_naming_the_variable(monkeypatch, variable, value):
    with pytest.raises(ImproperlyConfigured, match=variable):
        _load_settings(monkeypatch, **{variable: value})


def test_the_embedded_database_port_is_checked_when_it_is_used(monkeypatch, tmp_path):
    monkeypatch.setenv("DATA_DIR", str(tmp_path))  # where the embedded password is made
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(ImproperlyConfigured, match="EMBEDDED_PG_PORT"):
        _load_settings(monkeypatch, EMBEDDED_PG_PORT="port")
    loaded = _load_settings(monkeypatch, EMBEDDED_PG_PORT="6000")
    assert loaded["DATABASES"]["default"]["PORT"] == "6000"
    assert (
        loaded["DATABASES"]["default"]["PASSWORD"]
        == (tmp_path / "postgres_password").read_text().strip()
    )


def test_the_embedded_redis_port_is_checked_when_it_is_used(monkeypatch, tmp_path):
    # Only then: with REDIS_URL set, the embedded URL (and its password file) is not made.
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    _load_settings(monkeypatch, REDIS_URL="redis://127.0.0.1:6379/0", EMBEDDED_REDIS_PORT="0")
    assert not (tmp_path / "redis_password").exists()
    monkeypatch.delenv("REDIS_URL")
    with pytest.raises(ImproperlyConfigured, match="EMBEDDED_REDIS_PORT"):
        _load_settings(monkeypatch, EMBEDDED_REDIS_PORT="0")
    loaded = _load_settings(monkeypatch, EMBEDDED_REDIS_PORT="6001")
    password = (tmp_path / "redis_password").read_text().strip()
    assert loaded["REDIS_URL"] == f"redis://:{password}@127.0.0.1:6001/0"


def test_good_values_are_read(monkeypatch):
    loaded = _load_settings(
        monkeypatch,
        WHISPER_DEVICE="cpu",
        WHISPER_COMPUTE_TYPE="int8",
        KEYWORD_BACKEND="embedded",
        WORKER_WARMUP="off",
        WEB_PORT="8080",
    )
    assert loaded["WHISPER_DEVICE"] == "cpu"
    assert loaded["KEYWORD_BACKEND"] == "embedded"
    assert loaded["WORKER_WARMUP"] is False
    assert loaded["WEB_PORT"] == 8080


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


@pytest.mark.slow
def test_a_bad_value_stops_a_real_start_up_naming_the_variable():
    # The in-process checks above run the settings file; this one is the real thing once.
    result = _django_setup(VAD_THRESHOLD="2")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "VAD_THRESHOLD" in result.stderr.splitlines()[-1]


@pytest.mark.slow
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


def test_the_embedded_servers_command_names_a_bad_port(monkeypatch, capsys):
    from workers.embedded import main

    monkeypatch.setenv("EMBEDDED_REDIS_PORT", "99999")
    monkeypatch.setenv("DATABASE_URL", "postgresql://h/db")
    monkeypatch.delenv("REDIS_URL", raising=False)
    with pytest.raises(SystemExit, match="ImproperlyConfigured: EMBEDDED_REDIS_PORT"):
        main(["urls"])


@pytest.mark.parametrize(("setting", "loads"), [(True, True), (False, False)])
def test_worker_warmup_follows_the_setting(settings, monkeypatch, setting, loads):
    from transcription.speech import engine
    from workers import warmup

    loaded = []
    monkeypatch.setattr(engine, "get_model", lambda: loaded.append("whisper"))
    monkeypatch.setattr(sys, "argv", ["celery", "worker", "-Q", "stt"])
    settings.WORKER_WARMUP = setting
    warmup._warm_up()
    assert loaded == (["whisper"] if loads else [])


def test_the_tests_run_on_their_own_settings_module(settings):
    # The fast password hasher lives there; `make test` once lost it to a DJANGO_SETTINGS_MODULE
    # that a wrapper had set, and every test creating users got three times slower.
    assert settings.SETTINGS_MODULE == "tests.settings"
    assert os.environ["DJANGO_SETTINGS_MODULE"] == "tests.settings"  # for the processes started
    assert settings.PASSWORD_HASHERS == ["django.contrib.auth.hashers.MD5PasswordHasher"]
