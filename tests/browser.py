"""Headless Chromium (Debian's) driven by Playwright."""

from __future__ import annotations

import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without these, Chromium keeps trying to reach Google's services, which this network refuses.
BASE_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # The tests read the pages' English wording, so the browser asks for English as its
    # person's would (Accept-Language); tests of the Korean pages open a ko-KR context.
    "--lang=en-US",
]


@contextmanager
def chromium(extra_args: list[str] | None = None, env: dict[str, str] | None = None):
    """Headless Chromium; ``env`` adds to its environment (``HOME`` picks the certificate
    store, ``trusting``)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=BASE_ARGS + (extra_args or []),
            env={**os.environ, **env} if env else None,
        )
        try:
            yield browser
        finally:
            browser.close()


def trusting(authority: Path, home: Path) -> dict[str, str]:
    """A home folder whose certificate store trusts ``authority``, as the README tells a
    Linux user to do (Chromium on Linux reads ``~/.pki/nssdb``); pass the result as
    ``chromium(env=...)``."""
    from tests.tools import require_tool

    certutil = require_tool("certutil", "libnss3-tools")
    store = home / ".pki" / "nssdb"
    store.mkdir(parents=True, exist_ok=True)
    database = f"sql:{store}"
    subprocess.run([certutil, "-N", "-d", database, "--empty-password"], check=True)
    subprocess.run(
        [certutil, "-A", "-d", database, "-t", "C,,", "-n", "speech platform", "-i", authority],
        check=True,
    )
    return {"HOME": str(home)}


def speaking_microphone(speech, folder: Path) -> list[str]:
    """Chromium's arguments to play ``speech`` (16 kHz float32) once as the microphone: half
    a second of silence, the speech, then six seconds of silence, which end the utterance."""
    import numpy as np

    from tests.audio_files import write_wav

    silence = np.zeros(16000 * 3, dtype=np.float32)
    mic = write_wav(folder / "mic.wav", np.concatenate([silence[:8000], speech, silence, silence]))
    return [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={mic}%noloop",
        "--autoplay-policy=no-user-gesture-required",
    ]


def sign_in(page, base_url: str, username: str, password: str) -> None:
    """Sign in through the real login form."""
    page.goto(base_url + "/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    # The form's own button: the header's language switch has submit buttons too.
    page.click("form.login button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def off_loop(function, *args):
    """Run a database query outside the thread that drove Playwright: its sync API leaves an
    event loop behind in that thread, and Django refuses synchronous ORM calls there."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(function, *args).result()
