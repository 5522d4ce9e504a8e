"""Starting the platform's processes.

``python -m workers.launch procfile`` prints the process list: daphne on
WEB_PORT (HTTP) and HTTPS_PORT (HTTPS, ``sttproject/tls.py``; 0 turns it off), one Celery worker for uploads (queues ``stt_live,stt``, at nice 10) per
visible GPU (each pinned with its own CUDA_VISIBLE_DEVICES; one CPU worker without a
GPU), beside each a worker for live finals (``stt_live``, at normal priority; none with
LIVE_FINAL_WORKERS=false) and one on ``stt_partial`` (live interim text, at the lowest
CPU priority; none with LIVE_PARTIAL_QUEUE=stt), a worker on queue ``keywords`` and
Flower (on FLOWER_HOST, 127.0.0.1 by default, always behind a password) and the host's
metrics exporter (on METRICS_HOST:METRICS_PORT, 127.0.0.1:9560 by default; none with
METRICS_PORT=0 or METRICS_EXPORTER=thread).
``python -m workers.launch serve`` migrates, makes sure an admin exists, collects
static files, empties this host's metrics folder (PROMETHEUS_MULTIPROC_DIR,
``$DATA_DIR/metrics/<host>`` unless set), then hands over to honcho, which prefixes each
process's log lines with its name and stops them all on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import shlex
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from sttproject import tls
from sttproject.env import (
    envbool,
    envchoice,
    envcredentials,
    envdevices,
    envhost,
    envint,
    envport,
)
from sttproject.tls import TLSFiles
from workers.embedded import data_dir
from workers.passwords import generated_password
from workers.queues import Queue, consumed_queues

REPO_ROOT = Path(__file__).resolve().parent.parent
# Partial (interim text) workers run at the lowest CPU priority: on a CPU-only machine a
# final that starts while a partial is decoding gets nearly all of the cores.
PARTIAL_NICENESS = 19
# Upload workers run below the live finals' workers, for the same reason.
UPLOAD_NICENESS = 10
# Flower's login when FLOWER_BASIC_AUTH is unset; the password is generated in DATA_DIR.
FLOWER_USER = "flower"
FLOWER_PASSWORD_FILE = "flower_password"
# prometheus-client's multiprocess mode: every process of the host records its series there.
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def visible_gpu_ids(environ: Mapping[str, str] | None = None) -> list[str]:
    """GPU ids to pin stt workers to: STT_GPUS if set, else CUDA_VISIBLE_DEVICES if set,
    else what nvidia-smi lists; [] means one CPU worker."""
    # Both are parsed whichever wins, so a typo in either stops the launch.
    explicit = envdevices("STT_GPUS", environ=environ)
    visible = envdevices("CUDA_VISIBLE_DEVICES", empty_is_unset=False, environ=environ)
    if explicit is not None:
        return explicit
    if visible is not None:
        return visible
    from workers.gpu import list_gpus

    return [str(gpu.index) for gpu in list_gpus()]


def partial_workers_wanted(environ: Mapping[str, str] | None = None) -> bool:
    """Whether partials have workers of their own (LIVE_PARTIAL_QUEUE is not ``stt``), parsed
    as the settings parse it."""
    choices = (Queue.STT_PARTIAL.value, Queue.STT.value)
    queue = envchoice("LIVE_PARTIAL_QUEUE", Queue.STT_PARTIAL.value, choices, environ=environ)
    return queue != Queue.STT.value


@dataclass(frozen=True)
class LaunchConfig:
    """The launcher's own variables, parsed as strictly as the settings parse theirs.

    The launcher runs before Django is set up, so it cannot lean on the settings; a bad value
    must still stop it before anything starts, naming the variable.
    """

    web_host: str
    web_port: int
    https_port: int  # 0: no HTTPS
    flower_host: str
    flower_port: int
    flower_basic_auth: list[str] | None
    keyword_concurrency: int
    loglevel: str
    partial_workers: bool
    live_workers: bool
    metrics_port: int  # 0: no exporter
    metrics_exporter: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LaunchConfig:
        config = cls(
            web_host=envhost("WEB_HOST", "0.0.0.0", environ=environ),
            web_port=envport("WEB_PORT", 5000, environ=environ),
            https_port=envint("HTTPS_PORT", 5443, minimum=0, maximum=65535, environ=environ),
            flower_host=envhost("FLOWER_HOST", "127.0.0.1", environ=environ),
            flower_port=envport("FLOWER_PORT", 5555, environ=environ),
            flower_basic_auth=envcredentials("FLOWER_BASIC_AUTH", environ=environ),
            keyword_concurrency=envint(
                "KEYWORD_WORKER_CONCURRENCY", 2, minimum=1, maximum=64, environ=environ
            ),
            # The same choices as the settings' LOG_LEVEL, so one value works for both.
            loglevel=envchoice(
                "LOG_LEVEL", "info", ("debug", "info", "warning", "error"), environ=environ
            ).upper(),
            partial_workers=partial_workers_wanted(environ),
            live_workers=live_workers_wanted(environ),
            # As the settings parse them.
            metrics_port=envint("METRICS_PORT", 9560, minimum=0, maximum=65535, environ=environ),
            metrics_exporter=envchoice(
                "METRICS_EXPORTER", "process", ("process", "thread"), environ=environ
            ),
        )
        # The exporter reads METRICS_HOST from the settings; a bad one stops the launch here.
        envhost("METRICS_HOST", "127.0.0.1", environ=environ)
        if config.https_port == config.web_port:
            raise ImproperlyConfigured(
                f"HTTPS_PORT={config.https_port} is WEB_PORT too: give HTTPS its own port "
                "(or HTTPS_PORT=0 for none)"
            )
        # Flower's UI lists every user's task arguments and can stop workers: beyond
        # loopback only with a password someone chose (a generated one would sit in var/,
        # unknown to whoever Flower is opened to).
        if config.flower_basic_auth is None and not is_loopback(config.flower_host):
            raise ImproperlyConfigured(
                f"FLOWER_BASIC_AUTH is required when FLOWER_HOST={config.flower_host!r} is not "
                "a loopback address: Flower shows every user's task arguments; set "
                "FLOWER_BASIC_AUTH=user:password, or leave FLOWER_HOST unset (127.0.0.1)"
            )
        return config


def is_loopback(host: str) -> bool:
    """Whether ``host`` (as FLOWER_HOST spells it) is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def web_command(
    host: str,
    port: int | str,
    *,
    python: str = sys.executable,
    proxy_headers: bool = False,
    https: tuple[int, TLSFiles] | None = None,
) -> list[str]:
    """daphne serving the platform (HTTP, the pages and the WebSockets), with request bodies
    judged by their headers before they are read (``sttproject/server.py``); with ``https``
    (port, certificate) the same application on a TLS endpoint too."""
    command = [python, "-m", "sttproject.server", "-b", host, "-p", str(int(port))]
    if https is not None:
        command += ["-e", tls.endpoint(host, https[0], https[1])]
    if proxy_headers:
        command.append("--proxy-headers")
    return [*command, "sttproject.asgi:application"]


def https_files(config: LaunchConfig, environ: Mapping[str, str] | None = None) -> TLSFiles | None:
    """The certificate for HTTPS_PORT (made on the first start), or None with HTTPS off."""
    if not config.https_port:
        return None
    return tls.tls_files(data_dir(environ), environ)


def worker_command(
    queue: str,
    name: str,
    *,
    concurrency: int | str = 1,
    loglevel: str = "INFO",
    python: str = sys.executable,
    niceness: int = 0,
) -> list[str]:
    """A prefork Celery worker on ``queue``, named ``name`` (``%h`` is the host name),
    run under ``nice -n niceness`` when that is not 0."""
    nice = ["nice", "-n", str(int(niceness))] if niceness else []
    return [
        *nice,
        *(python, "-m", "celery", "-A", "sttproject", "worker"),
        *("-Q", ",".join(consumed_queues(queue))),
        *("--concurrency", str(int(concurrency)), "--pool", "prefork", "--loglevel", loglevel),
        *("-n", name),
    ]


def worker_niceness(queue: str) -> int:
    """The CPU priority a worker on ``queue`` is started at: live finals first, uploads
    below them, interim text below everything."""
    return {Queue.STT_PARTIAL: PARTIAL_NICENESS, Queue.STT: UPLOAD_NICENESS}.get(queue, 0)


def live_workers_wanted(environ: Mapping[str, str] | None = None) -> bool:
    """Whether live finals have a worker of their own beside each stt worker."""
    return envbool("LIVE_FINAL_WORKERS", True, environ=environ)


def device_workers(environ: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """The workers started per device, as (name prefix, queue), in the order of starting."""
    workers = [("stt", Queue.STT.value)]
    if live_workers_wanted(environ):
        workers.append(("stt-live", Queue.STT_LIVE.value))
    if partial_workers_wanted(environ):
        workers.append(("stt-partial", Queue.STT_PARTIAL.value))
    return workers


def procfile_lines(
    python: str = sys.executable, environ: Mapping[str, str] | None = None
) -> list[str]:
    config = LaunchConfig.from_env(environ)
    loglevel = config.loglevel
    files = https_files(config, environ)
    https = (config.https_port, files) if files is not None else None
    web = web_command(config.web_host, config.web_port, python=python, https=https)
    lines = [f"web: exec {shlex.join(web)}"]
    # One process per GPU: the model is loaded once per process and a GPU serves one
    # decode at a time best; -c 1 with prefetch 1 keeps each worker to one job.
    # Beside each, unless LIVE_PARTIAL_QUEUE=stt, a worker for live interim text at the
    # lowest CPU priority: it uses what the finals leave and never holds a final up.
    # Beside each, unless LIVE_FINAL_WORKERS=false, a worker for live finals at normal
    # priority, while the uploads' worker runs below it: a final never waits for an upload.
    gpus = visible_gpu_ids(environ)
    for gpu in gpus or [""]:
        device = f"gpu{gpu}" if gpu else "cpu"
        pin = f"CUDA_VISIBLE_DEVICES={shlex.quote(gpu) if gpu else ''}"
        for prefix, queue in device_workers(environ):
            command = worker_command(
                queue,
                f"{prefix}-{device}@%h",
                loglevel=loglevel,
                python=python,
                niceness=worker_niceness(queue),
            )
            lines.append(f"{prefix}-{device}: {pin} exec {shlex.join(command)}")
    keywords = worker_command(
        Queue.KEYWORDS,
        "keywords@%h",
        concurrency=config.keyword_concurrency,
        loglevel=loglevel,
        python=python,
    )
    lines.append(f"keywords: exec {shlex.join(keywords)}")
    celery = f"{shlex.quote(python)} -m celery -A sttproject"
    # Tornado takes an IPv6 address without the brackets daphne wants.
    address = shlex.quote(f"--address={config.flower_host.strip('[]')}")
    flower = f"{celery} flower --port={config.flower_port} {address}"
    # Flower reads FLOWER_BASIC_AUTH from its environment, which keeps the password off its
    # command line (every local user can read that). Unset, Flower is on loopback (checked
    # above), where other users of the machine still reach it: it gets a generated password,
    # read from its 0600 file as Flower starts, so it is in no file but that one.
    auth = ""
    if config.flower_basic_auth is None:
        path = data_dir(environ) / FLOWER_PASSWORD_FILE
        generated_password(path)
        auth = f'FLOWER_BASIC_AUTH={FLOWER_USER}:"$(cat {shlex.quote(str(path))})" '
    # Flower keeps its own metrics (its /metrics), out of this host's folder.
    lines.append(f"flower: {auth}exec env -u {METRICS_DIR_ENV} {flower}")
    # One exporter for the host's processes; this host runs the web, so it carries the
    # platform-wide gauges too (queue depth, workers online).
    if config.metrics_port and config.metrics_exporter == "process":
        lines.append(f"metrics: exec {shlex.join(metrics_command(python, platform=True))}")
    return lines


def metrics_command(python: str = sys.executable, *, platform: bool) -> list[str]:
    """The host's metrics exporter (workers/metrics_exporter.py); ``platform`` on the one
    host whose exporter carries the platform-wide gauges (the web's)."""
    return [python, "-m", "workers.metrics_exporter", *(["--platform"] if platform else [])]


def metrics_dir(environ: Mapping[str, str] | None = None) -> Path:
    """This host's metrics folder: PROMETHEUS_MULTIPROC_DIR, else one per host name under
    DATA_DIR (a DATA_DIR shared between hosts keeps them apart)."""
    environ = os.environ if environ is None else environ
    if environ.get(METRICS_DIR_ENV):
        return Path(environ[METRICS_DIR_ENV])
    return data_dir(environ) / "metrics" / socket.gethostname()


def prepare_metrics_dir(path: Path) -> None:
    """An empty metrics folder before any process starts: files of an earlier start would
    be added to this one's (and their pids may be reused). Only prometheus-client's own files
    are deleted, whatever else the folder holds."""
    path.mkdir(parents=True, exist_ok=True)
    for name in path.glob("*.db"):
        name.unlink(missing_ok=True)


def _manage(*args: str) -> None:
    subprocess.run([sys.executable, str(REPO_ROOT / "manage.py"), *args], check=True, cwd=REPO_ROOT)


def serve() -> None:
    # The process list first: a bad variable stops the launch before the database is touched.
    lines = procfile_lines()
    # Flower takes FLOWER_BASIC_AUTH from the environment it inherits; written back as parsed,
    # without the spaces around items that Flower would keep in the names.
    credentials = LaunchConfig.from_env().flower_basic_auth
    if credentials:
        os.environ["FLOWER_BASIC_AUTH"] = ",".join(credentials)
    _manage("migrate", "--noinput")
    _manage("ensure_admin")
    _manage("collectstatic", "--noinput", "--verbosity", "0")
    print(addresses_banner(), flush=True)
    run_dir = data_dir() / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    procfile = run_dir / "Procfile"
    procfile.write_text("\n".join(lines) + "\n")
    metrics = metrics_dir()
    prepare_metrics_dir(metrics)
    os.environ[METRICS_DIR_ENV] = str(metrics)
    honcho = [sys.executable, "-m", "honcho", "start", "-f", str(procfile), "-d", str(REPO_ROOT)]
    os.execv(sys.executable, honcho)


def addresses_banner(environ: Mapping[str, str] | None = None) -> str:
    """Where to open the platform, printed once by ``serve``: the https addresses to give
    colleagues (the microphone needs HTTPS away from this machine) and how to trust the
    certificate made here."""
    config = LaunchConfig.from_env(environ)
    host = "localhost" if config.web_host in ("0.0.0.0", "::", "[::]") else config.web_host
    lines = ["", f"Speech platform on http://{host}:{config.web_port}/ (this machine)"]
    files = https_files(config, environ)
    if files is None:
        lines.append("HTTPS is off (HTTPS_PORT=0): other machines get no microphone over http")
        return "\n".join(lines) + "\n"
    lines.append("Give colleagues (laptops, phones) an https address:")
    lines += [f"  {url}" for url in tls.public_urls(config.https_port, files)]
    if files.ca is not None:
        lines += [
            f"The certificate is this installation's own (authority {files.ca}).",
            "Browsers warn until it is trusted: accept the warning once, or install the",
            f"authority from http://<this machine>:{config.web_port}/tls/ca.crt (README).",
            f"Its SHA-256 fingerprint: {files.ca_fingerprint}",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.launch", description=__doc__)
    parser.add_argument("action", choices=["procfile", "serve"])
    args = parser.parse_args(argv)
    os.chdir(REPO_ROOT)
    try:
        if args.action == "procfile":
            print("\n".join(procfile_lines()))
        else:
            serve()
    except ImproperlyConfigured as error:
        # One line naming the variable, as the settings' error would, without a traceback.
        raise SystemExit(f"ImproperlyConfigured: {error}") from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
