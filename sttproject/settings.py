"""Django settings. Everything a deployment changes comes from the environment,
parsed strictly by ``sttproject.env``: a bad value stops start-up naming the variable.
Every variable is documented in README.md (Configuration)."""

from __future__ import annotations

import secrets
import socket
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from sttproject.env import (
    envbool,
    envchoice,
    envfloat,
    envhost,
    envint,
    envlist,
    envnetworks,
    envport,
    envstr,
    envurl,
    parse_database_url,
    parse_storage_url,
)
from transcription.speech.diarization import parse_setting as diarization_setting
from workers.embedded import embedded_database_url, embedded_redis_url

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(envstr("DATA_DIR", str(BASE_DIR / "var"))).resolve()

DEBUG = envbool("DEBUG", False)


def _secret_key() -> str:
    key = envstr("SECRET_KEY")
    if key:
        if len(key) < 32:
            raise ImproperlyConfigured("SECRET_KEY is shorter than 32 characters")
        return key
    # Embedded default: one random key per installation, kept with the data so
    # sessions survive a restart.
    path = DATA_DIR / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
# The original system answered on every interface; a production deployment
# should name its hosts (README: Configuration).
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["*"])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", ["http://localhost:5000"])
# Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (sttproject/proxies.py);
# from any other peer they are ignored. Empty by default: nobody's.
TRUSTED_PROXIES = envnetworks("TRUSTED_PROXIES", [])

# HTTPS beside HTTP (./start_system.sh; sttproject/tls.py): the port, 0 for none. Pages use it
# to send someone on an insecure origin to the https address of the same host.
HTTPS_PORT = envint("HTTPS_PORT", 5443, minimum=0, maximum=65535)
# Where the first start keeps the certificate it made (its authority is offered at /tls/ca.crt).
TLS_DIR = DATA_DIR / "tls"
# Cookies sent over HTTPS are marked Secure (sttproject/secure_cookies.py), so they never
# travel in the clear; SECURE_COOKIES=true marks them Secure everywhere (an HTTPS-only site:
# then a sign-in over plain http no longer works). Behind a proxy that terminates TLS, set
# TRUSTED_PROXIES: its X-Forwarded-Proto makes a request https (what SECURE_PROXY_SSL_HEADER
# would do, believed from those proxies only, sttproject/proxies.py).
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = envbool("SECURE_COOKIES", False)
# HSTS is off unless asked for: it holds for the host name on every port, so a browser that
# saw it would no longer open http://<host>:5000/. Turn it on for a site served only over
# HTTPS on 443 (docs/production.md).
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", False)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "channels",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "transcription",
    "keywords",
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before the session and CSRF middleware in the list, so after them on the way out: it
    # sees the cookies they set.
    "sttproject.secure_cookies.SecureCookiesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Korean unless the browser asks for English (Accept-Language) or the header's switch set
    # the language cookie; after the session middleware, before the common one (Django's order).
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    # A database or Redis outage under /api/ and /v1/ answers a JSON 503, not an HTML 500.
    "transcription.web.outage.ApiOutageMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every page needs a login unless its view says otherwise (login, health, config, API
    # views, which answer 401 through DRF instead of redirecting).
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as axes asks: turns a refused sign-in into the lockout answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "sttproject.urls"
ASGI_APPLICATION = "sttproject.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- PostgreSQL: the record ---------------------------------------------------
DATABASE_URL = envstr("DATABASE_URL") or embedded_database_url()
DATABASES = {"default": parse_database_url("DATABASE_URL", DATABASE_URL)}
DATABASES["default"]["CONN_MAX_AGE"] = envint("DATABASE_CONN_MAX_AGE", 0, minimum=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", 5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: broker, channel layer, hand-over of live audio ----------------------
# The embedded URL only when REDIS_URL is unset: building it writes the embedded Redis's password.
REDIS_URL = envurl(
    "REDIS_URL", "" if envstr("REDIS_URL") else embedded_redis_url(), ("redis", "rediss")
)
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # redis-py 8 reads with a 5 s socket time-out by default, exactly channels_redis's
        # blocking-pop time-out: an idle consumer would die with "Timeout reading". Reads
        # must be allowed to outlast the blocking pop.
        # A Redis that restarted cut every pooled connection: a command is tried again on a
        # new one (about 1.5 s in all) instead of failing the socket it was for.
        "CONFIG": {
            "hosts": [
                {
                    "address": REDIS_URL,
                    "socket_timeout": 30,
                    "socket_connect_timeout": 5,
                    "retry": AsyncRetry(ExponentialBackoff(cap=0.5, base=0.05), 5),
                    "retry_on_error": [RedisConnectionError],
                }
            ],
            "capacity": 1000,
            "expiry": 60,
        },
    }
}

CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_SEND_TASK_EVENTS = True  # Flower shows tasks as they run
CELERY_TASK_SEND_SENT_EVENT = True
# A redelivered message must outlive the longest task, or Redis hands an
# unacknowledged long transcription to a second worker while the first still runs.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 4 * 3600,
    # A worker polls its queues in the order it names them (stt_live before stt), instead
    # of taking turns: a live final goes first however many uploads are queued.
    "queue_order_strategy": "priority",
}
CELERY_TIMEZONE = "UTC"
# Pool processes load their models before saying they are up (workers/warmup.py); a large
# model on a GPU takes far longer than Celery's default 4 s allowance.
CELERY_WORKER_PROC_ALIVE_TIMEOUT = 300
# Load the models as each worker process starts rather than on its first job.
WORKER_WARMUP = envbool("WORKER_WARMUP", True)

# --- Speech ---------------------------------------------------------------------
EMBEDDED_MODEL_DIR = DATA_DIR / "models" / "whisper-base"
WHISPER_MODEL = envstr("WHISPER_MODEL", str(EMBEDDED_MODEL_DIR))
WHISPER_DEVICE = envchoice("WHISPER_DEVICE", "auto", ("auto", "cpu", "cuda"))
WHISPER_COMPUTE_TYPE = envchoice(
    "WHISPER_COMPUTE_TYPE",
    "auto",
    (
        "auto",
        "default",
        "int8",
        "int8_float16",
        "int8_float32",
        "int8_bfloat16",
        "int16",
        "float16",
        "bfloat16",
        "float32",
    ),
)
WHISPER_BEAM_SIZE = envint("WHISPER_BEAM_SIZE", 5, minimum=1, maximum=20)
WHISPER_CPU_THREADS = envint("WHISPER_CPU_THREADS", 0, minimum=0)
# Utterances decoded together; 0 picks 8 on a GPU and 4 on the CPU.
STT_BATCH_SIZE = envint("STT_BATCH_SIZE", 0, minimum=0, maximum=64)
# Consecutive utterances share a Whisper window of up to this many seconds (the encoder
# always works on 30 s, so packing short utterances saves most of its work); 0 decodes
# every utterance in a window of its own.
STT_PACK_WINDOW_S = envfloat("STT_PACK_WINDOW_S", 28.0, minimum=0.0, maximum=29.0)
# Utterances of an upload whose pause (between VAD's padded bounds) is at most this long are
# decoded together, so a sentence keeps its context across the pause; longer pauses always
# end a segment. At most 1.5 s, so that no segment ever spans a 2 s silence; 0 decodes each
# utterance alone.
STT_JOIN_PAUSE_S = envfloat("STT_JOIN_PAUSE_S", 1.0, minimum=0.0, maximum=1.5)
# An upload is read and transcribed in windows of this many seconds of audio, cut in pauses:
# the worker's memory depends on this, not on the file's length.
STT_WINDOW_S = envfloat("STT_WINDOW_S", 600.0, minimum=60.0, maximum=3600.0)
# A transcription task works this many seconds at most, then queues the rest of its file
# behind the work that came meanwhile (other people's files); 0: a file in one go.
STT_SLICE_S = envfloat("STT_SLICE_S", 300.0, minimum=0.0)
# A transcription task is stopped after this long (soft limit; the hard limit is 60 s later).
STT_TASK_TIME_LIMIT_S = envint("STT_TASK_TIME_LIMIT_S", 3 * 3600, minimum=60)
DEFAULT_LANGUAGE = envstr("DEFAULT_LANGUAGE", "ko")

VAD_THRESHOLD = envfloat("VAD_THRESHOLD", 0.5, minimum=0.05, maximum=0.95)
VAD_MIN_SILENCE_MS = envint("VAD_MIN_SILENCE_MS", 500, minimum=50, maximum=10_000)
VAD_SPEECH_PAD_MS = envint("VAD_SPEECH_PAD_MS", 200, minimum=0, maximum=2_000)
VAD_MIN_SPEECH_MS = envint("VAD_MIN_SPEECH_MS", 250, minimum=0, maximum=10_000)
VAD_MAX_UTTERANCE_S = envfloat("VAD_MAX_UTTERANCE_S", 30.0, minimum=2.0, maximum=60.0)

# --- Live sessions ---------------------------------------------------------------
LIVE_MAX_SESSIONS_PER_USER = envint("LIVE_MAX_SESSIONS_PER_USER", 4, minimum=1, maximum=100)
# Past this many seconds of audio waiting for a worker, status events say the server is behind.
LIVE_BACKLOG_WARN_S = envfloat("LIVE_BACKLOG_WARN_S", 10.0, minimum=1.0)
LIVE_PARTIAL_INTERVAL_S = envfloat("LIVE_PARTIAL_INTERVAL_S", 1.0, minimum=0.3, maximum=10.0)
# Start on an utterance's final at the pause (LIVE_PAUSE_MS of silence) instead of after
# VAD_MIN_SILENCE_MS; kept when the silence lasts, thrown away (shown as interim text) if not.
LIVE_EARLY_FINALS = envbool("LIVE_EARLY_FINALS", True)
# The silence after speech that counts as a pause (the early final starts then, on the audio
# so far): shorter is sooner, at the cost of more guesses thrown away when speech goes on.
LIVE_PAUSE_MS = envint("LIVE_PAUSE_MS", 100, minimum=10, maximum=10_000)
# Where interim text is computed: "stt_partial", workers of their own at low CPU priority
# (one per stt worker, started by the launcher), so finals never queue behind a partial;
# "stt" lets the stt workers do it between finals (one process less per device).
LIVE_PARTIAL_QUEUE = envchoice("LIVE_PARTIAL_QUEUE", "stt_partial", ("stt_partial", "stt"))
# Keep each live session's audio (16 kHz 16-bit WAV under MEDIA_ROOT/live/, about 115 MB an
# hour) so its transcript page can play it and the admin can transcribe it again.
LIVE_KEEP_AUDIO = envbool("LIVE_KEEP_AUDIO", True)
# After a stop, how long ``stopped`` waits for the stream's last finals and their keywords
# before an ``unfinished`` error names what is still missing (stored when it comes). 30 s:
# the last finals normally come within seconds (a backlog past LIVE_BACKLOG_WARN_S, 10 s of
# audio, is already "behind", and a worker reads it several times faster than real time),
# and an LLM answers within VLLM_TIMEOUT_S (20 s) or not at all; one that hangs is tried
# three times (a minute) before the embedded extractor answers, which is reported rather
# than waited for: longer only keeps someone at the Stop button when something is really
# wrong. 0 sends ``stopped`` at once, naming what was still on its way.
LIVE_STOP_WAIT_S = envfloat("LIVE_STOP_WAIT_S", 30.0, minimum=0.0, maximum=600.0)

# --- Keywords -------------------------------------------------------------------
VLLM_API_URL = envurl("VLLM_API_URL", "http://127.0.0.1:8000/v1", ("http", "https")).rstrip("/")
VLLM_MODEL = envstr("VLLM_MODEL", "Qwen/Qwen2.5-7B-Instruct")
VLLM_API_KEY = envstr("VLLM_API_KEY", "EMPTY")
VLLM_TIMEOUT_S = envfloat("VLLM_TIMEOUT_S", 20.0, minimum=0.5, maximum=600)
KEYWORD_BACKEND = envchoice("KEYWORD_BACKEND", "auto", ("auto", "vllm", "embedded"))

# --- Speakers ---------------------------------------------------------------------
# Automatic speaker labels for uploads: "none" (the default), or the dotted path of a backend
# class (transcription/speech/diarization.py says what it must offer); loaded when a stt
# worker starts, so a wrong path stops it with a message.
DIARIZATION_BACKEND = diarization_setting(envstr("DIARIZATION_BACKEND", "none"))

# --- Uploads and files ------------------------------------------------------------
MEDIA_ROOT = DATA_DIR / "media"
MEDIA_URL = "/media/"
UPLOAD_MAX_MB = envint("UPLOAD_MAX_MB", 500, minimum=1)
# The longest recording taken (seconds of audio, 4 h by default). Work grows with the length,
# not the bytes: 13.5 MB of Opus holds ten hours. Checked on the header at upload and again
# on the decoded samples in the worker, as a header can lie.
UPLOAD_MAX_DURATION_S = envint("UPLOAD_MAX_DURATION_S", 4 * 3600, minimum=1)
# Uploads are accepted and queued however many come; the workers are shared between people
# (transcription/batch/turns.py). Each person may have this many uploads at the workers at a
# time (0: one per stt worker online)...
UPLOAD_SLOTS_PER_USER = envint("UPLOAD_SLOTS_PER_USER", 0, minimum=0, maximum=1000)
# ...and upload at most this many seconds of audio an hour (100 h; 0: no limit), the limit
# against abuse: 429 with Retry-After past it.
UPLOAD_AUDIO_PER_HOUR_S = envint("UPLOAD_AUDIO_PER_HOUR_S", 100 * 3600, minimum=0)
# The cache is Redis, so that every web process shares what is kept there (the default
# per-process memory cache would not).
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        # Shares the database with the broker and channel layer; the prefix keeps ours apart.
        "KEY_PREFIX": "cache",
    }
}
# POST /v1/audio/transcriptions waits this long for the transcript, then answers 504 with its id.
OPENAI_API_TIMEOUT_S = envint("OPENAI_API_TIMEOUT_S", 600, minimum=1, maximum=24 * 3600)
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 20 * 1024 * 1024

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Uploads and live recordings: the local file system under MEDIA_ROOT (the embedded default),
# or S3-compatible object storage when STORAGE_URL names a bucket, so that workers on other
# hosts read them without a shared disk (transcription/storage.py).
STORAGE_URL = envstr("STORAGE_URL")
STORAGES = {
    "default": parse_storage_url("STORAGE_URL", STORAGE_URL),
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# A worker's local copies of stored audio for the decoder, one folder per worker, emptied
# after each job and when the worker starts (object storage only).
AUDIO_CACHE_DIR = DATA_DIR / "cache" / "audio"
# A web process's live recordings while their sessions stream, put into object storage
# when the stream ends (on the local file system the recording is written in place).
LIVE_SPOOL_DIR = DATA_DIR / "spool"
WHITENOISE_USE_FINDERS = DEBUG

# --- Ports (contracts with the original system) --------------------------------------
WEB_PORT = envport("WEB_PORT", 5000)
FLOWER_PORT = envport("FLOWER_PORT", 5555)
# How long a worker counts as online after its last heartbeat.
WORKER_HEARTBEAT_TTL_S = envint("WORKER_HEARTBEAT_TTL_S", 20, minimum=3, maximum=600)
# The host a worker names in its heartbeat (health, the status page list workers by it): the
# machine's name, or one given to a container that would otherwise report its own id.
WORKER_HOST = envhost("WORKER_HOST", socket.gethostname() or "localhost")

# --- Metrics (Prometheus; README: Metrics) ----------------------------------------------
# Where this host's metrics exporter listens (workers/metrics_exporter.py): loopback unless
# told otherwise, as it answers anyone who reaches it. METRICS_PORT=0: no exporter.
METRICS_HOST = envhost("METRICS_HOST", "127.0.0.1")
METRICS_PORT = envint("METRICS_PORT", 9560, minimum=0, maximum=65535)
# Who serves it: "process", the launcher's exporter process, one per host (./start_system.sh);
# "thread", the web or Celery worker process itself, for one process per container (compose).
METRICS_EXPORTER = envchoice("METRICS_EXPORTER", "process", ("process", "thread"))

LANGUAGE_CODE = "ko"
LANGUAGES = [("ko", "한국어"), ("en", "English")]
# Message catalogues (locale/<lang>/LC_MESSAGES/*.po); the install step compiles them.
LOCALE_PATHS = [BASE_DIR / "locale"]
# The header's switch stores the choice here for a year (Django's set_language view).
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
TIME_ZONE = envstr("TIME_ZONE", "Asia/Seoul")
USE_I18N = True
USE_TZ = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # "Authorization: Token <key>" (DRF's spelling) and "Bearer <key>" (OpenAI clients).
        # A token scheme first, so a missing or bad key answers 401 with WWW-Authenticate.
        "rest_framework.authentication.TokenAuthentication",
        "transcription.access.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNICODE_JSON": True,
    # ``?format=srt`` names an export format here, not a DRF renderer.
    "URL_FORMAT_OVERRIDE": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Speech platform API",
    "DESCRIPTION": "Transcripts, segments and keywords of live sessions and uploads.",
    "VERSION": "1.0",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# --- Sign-in throttle (django-axes; transcription/web/logins.py) ----------------------
# Wrong passwords counted per username and per client address; past LOGIN_MAX_FAILURES of them
# within LOGIN_LOCKOUT_S, every sign-in (the right password too) is refused until
# LOGIN_LOCKOUT_S after the last one. A successful sign-in before that clears the count.
LOGIN_MAX_FAILURES = envint("LOGIN_MAX_FAILURES", 10, minimum=1, maximum=10_000)
LOGIN_LOCKOUT_S = envint("LOGIN_LOCKOUT_S", 900, minimum=1, maximum=30 * 24 * 3600)
AUTHENTICATION_BACKENDS = [
    # First, so a locked account is refused before its password is even checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Attempts are rows in PostgreSQL: sign-in needs the database anyway, and a Redis outage
# must not stop people signing in. Staff see and clear them in the admin.
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# Callables so that the LOGIN_* values are read at each attempt.
AXES_FAILURE_LIMIT = "transcription.web.logins.failure_limit"
AXES_COOLOFF_TIME = "transcription.web.logins.lockout_window"
AXES_RESET_ON_SUCCESS = True
# A refused attempt during the lockout does not start it again: it ends when the message says.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "transcription.web.logins.lockout_response"
# REMOTE_ADDR, which only a trusted proxy can change (sttproject/proxies.py); never
# X-Forwarded-For read by a library that would trust it from anyone.
AXES_CLIENT_IP_CALLABLE = "transcription.web.logins.client_ip"
# Every successful sign-in would be a row kept forever; the attempts are what matter.
AXES_DISABLE_ACCESS_LOG = True
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {
        "handlers": ["console"],
        "level": envchoice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")).upper(),
    },
}
