"""A colleague on another machine: the live page through the machine's name over HTTPS,
with the certificate the first start made (trusted as the README says), the microphone
and finals; the same page over plain HTTP explains why there is no microphone."""

from __future__ import annotations

import pytest

from bench.cer import cer
from tests.browser import chromium, sign_in, speaking_microphone, trusting
from tests.celery_workers import running_worker
from tests.factories import PASSWORD, make_user
from tests.servers import running_web_https
from transcription.speech.audio import decode_audio

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Not localhost: a browser treats http://localhost as secure, any other name over http not.
HOST = "stt.lan"


def test_live_page_over_https_at_a_lan_name(eval_clip, tmp_path):
    path, entry = eval_clip("ko_zeroth_104_003_0253")
    args = [
        f"--host-resolver-rules=MAP {HOST} 127.0.0.1",
        *speaking_microphone(decode_audio(path), tmp_path),
    ]
    user = make_user("colleague")
    with (
        running_web_https(tmp_path / "data", hosts=(HOST,)) as web,
        running_worker("stt"),
        chromium(args, env=trusting(web.files.ca, tmp_path / "home")) as browser,
    ):
        https = web.https(HOST)
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        sign_in(page, https, user.username, PASSWORD)
        page.goto(https + "/")
        assert page.evaluate("window.isSecureContext && !!navigator.mediaDevices")
        page.click("#start")
        page.wait_for_selector("#conn[data-state=connected]", timeout=20_000)
        page.wait_for_selector("#transcript .line.final", timeout=90_000)
        text = page.locator("#transcript .line.final").first.inner_text()
        assert cer(entry["reference"], text, numerals=True) < 0.35, text
        assert errors == []
