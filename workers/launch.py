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
from pathlib import Path

from workers.queues import Queue

REPO_ROOT = Path(__file__).resolve().parent.parent
# Partial (interim text) workers run at the lowest CPU priority: on a CPU-only machine a
# final that starts while a partial is decoding gets nearly all of the cores.
PARTIAL_NICENESS = 19


def visible_gpu_ids() -> list[str]:
    """GPU ids to pin stt workers to: CUDA_VISIBLE_DEVICES if set, else what nvidia-smi lists."""
    explicit = os.environ.get("STT_GPUS", "").strip()
    if explicit:
        return (
            []
            if explicit in ("none", "cpu")
            else [g.strip() for g in explicit.split(",") if g.strip()]
        )
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g.strip() for g in visible.split(",") if g.strip() and g.strip() != "-1"]
    from workers.gpu import list_gpus

    return [str(gpu.index) for gpu in list_gpus()]


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


def partial_workers_wanted() -> bool:
    """Whether partials have workers of their own (LIVE_PARTIAL_QUEUE is not ``stt``), parsed
    as the settings parse it (the launcher runs before Django is set up)."""
    from sttproject.env import envchoice

    choices = (Queue.STT_PARTIAL.value, Queue.STT.value)
    return envchoice("LIVE_PARTIAL_QUEUE", Queue.STT_PARTIAL.value, choices) != Queue.STT.value


def procfile_lines(python: str = sys.executable) -> list[str]:
    web_host = os.environ.get("WEB_HOST", "0.0.0.0")
    web_port = os.environ.get("WEB_PORT", "5000")
    flower_port = os.environ.get("FLOWER_PORT", "5555")
    keyword_concurrency = os.environ.get("KEYWORD_WORKER_CONCURRENCY", "2")
    loglevel = os.environ.get("LOG_LEVEL", "info").upper()
    web = web_command(web_host, web_port, python=python, proxy_headers=True)
    lines = [f"web: exec {shlex.join(web)}"]
    # One process per GPU: the model is loaded once per process and a GPU serves one
    # decode at a time best; -c 1 with prefetch 1 keeps each worker to one job.
    # Beside each, unless LIVE_PARTIAL_QUEUE=stt, a worker for live interim text at the
    # lowest CPU priority: it uses what the finals leave and never holds a final up.
    gpus = visible_gpu_ids()
    partials = partial_workers_wanted()
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
        concurrency=keyword_concurrency,
        loglevel=loglevel,
        python=python,
    )
    lines.append(f"keywords: exec {shlex.join(keywords)}")
    celery = f"{shlex.quote(python)} -m celery -A sttproject"
    flower_auth = os.environ.get("FLOWER_BASIC_AUTH", "").strip()
    auth = f" --basic-auth={shlex.quote(flower_auth)}" if flower_auth else ""
    lines.append(f"flower: exec {celery} flower --port={int(flower_port)} --address=0.0.0.0{auth}")
    return lines


def _manage(*args: str) -> None:
    subprocess.run([sys.executable, str(REPO_ROOT / "manage.py"), *args], check=True, cwd=REPO_ROOT)


def serve() -> None:
    from workers.embedded import data_dir

    _manage("migrate", "--noinput")
    _manage("ensure_admin")
    _manage("collectstatic", "--noinput", "--verbosity", "0")
    run_dir = data_dir() / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    procfile = run_dir / "Procfile"
    procfile.write_text("\n".join(procfile_lines()) + "\n")
    honcho = [sys.executable, "-m", "honcho", "start", "-f", str(procfile), "-d", str(REPO_ROOT)]
    os.execv(sys.executable, honcho)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.launch", description=__doc__)
    parser.add_argument("action", choices=["procfile", "serve"])
    args = parser.parse_args(argv)
    os.chdir(REPO_ROOT)
    if args.action == "procfile":
        print("\n".join(procfile_lines()))
    else:
        serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
