"""Starting the platform's processes.

``python -m workers.launch procfile`` prints the process list: daphne on
WEB_PORT, one Celery worker on queue ``stt`` per visible GPU (each pinned with its
own CUDA_VISIBLE_DEVICES; one CPU worker without a GPU), beside each a worker on
``stt_partial`` (live interim text, at the lowest CPU priority; none with
LIVE_PARTIAL_QUEUE=stt), a worker on queue ``keywords`` and Flower.
``python -m workers.launch serve`` migrates, makes sure an admin exists, collects
static files, then hands over to honcho, which prefixes each process's log lines
with its name and stops them all on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from sttproject.env import (
    envchoice,
    envcredentials,
    envdevices,
    envhost,
    envint,
    envport,
)
from workers.queues import Queue

REPO_ROOT = Path(__file__).resolve().parent.parent
# Partial (interim text) workers run at the lowest CPU priority: on a CPU-only machine a
# final that starts while a partial is decoding gets nearly all of the cores.
PARTIAL_NICENESS = 19


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
    flower_port: int
    flower_basic_auth: list[str] | None
    keyword_concurrency: int
    loglevel: str
    partial_workers: bool

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LaunchConfig:
        return cls(
            web_host=envhost("WEB_HOST", "0.0.0.0", environ=environ),
            web_port=envport("WEB_PORT", 5000, environ=environ),
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
        )


def web_command(
    host: str, port: int | str, *, python: str = sys.executable, proxy_headers: bool = False
) -> list[str]:
    """daphne serving the platform (HTTP, the pages and the WebSockets)."""
    command = [python, "-m", "daphne", "-b", host, "-p", str(int(port))]
    if proxy_headers:
        command.append("--proxy-headers")
    return [*command, "sttproject.asgi:application"]


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
        *(python, "-m", "celery", "-A", "sttproject", "worker", "-Q", queue),
        *("--concurrency", str(int(concurrency)), "--pool", "prefork", "--loglevel", loglevel),
        *("-n", name),
    ]


def worker_niceness(queue: str) -> int:
    """The CPU priority a worker on ``queue`` is started at."""
    return PARTIAL_NICENESS if queue == Queue.STT_PARTIAL else 0


def procfile_lines(
    python: str = sys.executable, environ: Mapping[str, str] | None = None
) -> list[str]:
    config = LaunchConfig.from_env(environ)
    loglevel = config.loglevel
    web = web_command(config.web_host, config.web_port, python=python, proxy_headers=True)
    lines = [f"web: exec {shlex.join(web)}"]
    # One process per GPU: the model is loaded once per process and a GPU serves one
    # decode at a time best; -c 1 with prefetch 1 keeps each worker to one job.
    # Beside each, unless LIVE_PARTIAL_QUEUE=stt, a worker for live interim text at the
    # lowest CPU priority: it uses what the finals leave and never holds a final up.
    gpus = visible_gpu_ids(environ)
    partials = config.partial_workers
    for gpu in gpus or [""]:
        device = f"gpu{gpu}" if gpu else "cpu"
        pin = f"CUDA_VISIBLE_DEVICES={shlex.quote(gpu) if gpu else ''}"
        stt = worker_command(Queue.STT, f"stt-{device}@%h", loglevel=loglevel, python=python)
        lines.append(f"stt-{device}: {pin} exec {shlex.join(stt)}")
        if partials:
            partial = worker_command(
                Queue.STT_PARTIAL,
                f"stt-partial-{device}@%h",
                loglevel=loglevel,
                python=python,
                niceness=worker_niceness(Queue.STT_PARTIAL),
            )
            lines.append(f"stt-partial-{device}: {pin} exec {shlex.join(partial)}")
    keywords = worker_command(
        Queue.KEYWORDS,
        "keywords@%h",
        concurrency=config.keyword_concurrency,
        loglevel=loglevel,
        python=python,
    )
    lines.append(f"keywords: exec {shlex.join(keywords)}")
    celery = f"{shlex.quote(python)} -m celery -A sttproject"
    auth = ""
    if config.flower_basic_auth:
        auth = f" --basic-auth={shlex.quote(','.join(config.flower_basic_auth))}"
    lines.append(
        f"flower: exec {celery} flower --port={config.flower_port} --address=0.0.0.0{auth}"
    )
    return lines


def _manage(*args: str) -> None:
    subprocess.run([sys.executable, str(REPO_ROOT / "manage.py"), *args], check=True, cwd=REPO_ROOT)


def serve() -> None:
    from workers.embedded import data_dir

    # The process list first: a bad variable stops the launch before the database is touched.
    lines = procfile_lines()
    _manage("migrate", "--noinput")
    _manage("ensure_admin")
    _manage("collectstatic", "--noinput", "--verbosity", "0")
    run_dir = data_dir() / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    procfile = run_dir / "Procfile"
    procfile.write_text("\n".join(lines) + "\n")
    honcho = [sys.executable, "-m", "honcho", "start", "-f", str(procfile), "-d", str(REPO_ROOT)]
    os.execv(sys.executable, honcho)


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
