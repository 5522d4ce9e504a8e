"""What a screen reader meets (issue 15): the live transcript box is a labelled log the
keyboard reaches, which announces each final once and no partial; the status page updates in
place, without reloading itself under the reader or moving focus."""

from __future__ import annotations

import json

import pytest
import redis
from django.conf import settings

from tests.browser import chromium, sign_in
from tests.factories import PASSWORD, make_user
from tests.servers import running_web
from tests.web.test_phone_layout import phone_worker
from workers.heartbeat import KEY_PREFIX

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MEDIA_ARGS = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]

# A socket the test speaks through instead of the server's /ws (no worker runs here), and a
# record of what a screen reader would read from the live region: the nodes added to it that
# are not hidden from assistive technology.
FAKE_SOCKET = """
window.__sockets = [];
window.WebSocket = class {
    static OPEN = 1;
    constructor(url) { this.url = url; this.readyState = 1; this.sent = [];
                       window.__sockets.push(this); setTimeout(() => this.onopen && this.onopen(), 0); }
    send(data) { this.sent.push(data); }
    close() { this.readyState = 3; }
};
window.__announced = [];
document.addEventListener('DOMContentLoaded', () => {
    const box = document.getElementById('transcript');
    new MutationObserver((records) => {
        for (const r of records) for (const node of r.addedNodes) {
            const el = node.nodeType === 1 ? node : node.parentElement;
            if (el && el.closest('[aria-hidden=true]')) continue;
            window.__announced.push(node.textContent);
        }
    }).observe(box, {childList: true, subtree: true});
});
"""


def deliver(page, event: dict) -> None:
    page.evaluate("(e) => window.__sockets.at(-1).onmessage({data: JSON.stringify(e)})", event)


def test_live_box_announces_finals_not_partials(tmp_path):
    user = make_user("reader")
    with running_web(extra_env={"DATA_DIR": str(tmp_path)}) as url, chromium(MEDIA_ARGS) as browser:
        context = browser.new_context(locale="en-US")
        context.add_init_script(FAKE_SOCKET)
        page = context.new_page()
        sign_in(page, url, user.username, PASSWORD)
        page.goto(url + "/")
        box = page.locator("#transcript")
        assert box.get_attribute("aria-live") == "polite"
        assert box.get_attribute("role") == "log"
        assert box.get_attribute("aria-label") == "Live transcript"
        # Reachable from the keyboard: Tab from the controls lands on it.
        assert box.evaluate("el => el.tabIndex") == 0

        page.click("#start")
        page.wait_for_function("window.__sockets.length === 1")
        deliver(
            page, {"type": "ready", "seq": 1, "session": "00000000-0000-0000-0000-000000000001"}
        )
        for seq, text in enumerate(["안녕", "안녕하세", "안녕하세요 여러"], start=2):
            deliver(page, {"type": "partial", "seq": seq, "utterance": 0, "text": text})
        deliver(
            page,
            {"type": "final", "seq": 5, "utterance": 0, "segment": 0, "text": "안녕하세요 여러분."},
        )
        deliver(page, {"type": "partial", "seq": 6, "utterance": 1, "text": "오늘은"})
        deliver(
            page,
            {
                "type": "final",
                "seq": 7,
                "utterance": 1,
                "segment": 1,
                "text": "오늘은 예산을 검토합니다.",
            },
        )
        deliver(page, {"type": "partial", "seq": 8, "utterance": 2, "text": "다음"})

        # Shown: both finals and the running partial; read out: the finals only, once each.
        assert page.locator("#transcript .line").all_text_contents() == [
            "안녕하세요 여러분.",
            "오늘은 예산을 검토합니다.",
            "다음",
        ]
        assert page.locator("#transcript .line.partial").get_attribute("aria-hidden") == "true"
        announced = page.evaluate("window.__announced")
        assert announced == ["안녕하세요 여러분.", "오늘은 예산을 검토합니다."], announced
        sent = page.evaluate("window.__sockets[0].sent[0]")
        assert json.loads(sent)["type"] == "start"

        # Refused for too many sessions: the page says so, and what to do, in its alert.
        deliver(page, {"type": "error", "code": "too_many_sessions", "message": "limit"})
        banner = page.locator("#mic-banner[role=alert]")
        banner.wait_for(state="visible")
        assert "Too many live sessions are running." in banner.text_content()
        assert "then press Start again" in banner.text_content()
        assert page.locator("#start").is_enabled()


def test_status_page_updates_in_place(tmp_path):
    staff = make_user("operator", staff=True)
    first = phone_worker()
    second = None
    try:
        with running_web(extra_env={"DATA_DIR": str(tmp_path)}) as url, chromium() as browser:
            page = browser.new_context(locale="en-US").new_page()
            sign_in(page, url, staff.username, PASSWORD)
            page.goto(url + "/status/")
            assert page.locator("meta[http-equiv=refresh]").count() == 0
            # A mark that a reload would wipe, and focus on the refresh control.
            page.evaluate("window.__same_page = true")
            page.focus("#refresh")
            assert page.locator(f"text={first}").count() == 1

            second = phone_worker()
            page.keyboard.press("Enter")
            page.wait_for_selector(f"text={second}", timeout=10_000)
            assert page.evaluate("window.__same_page") is True
            assert page.evaluate("document.activeElement.id") == "refresh"
            assert page.locator("#updated").text_content().startswith("Updated at")

            # By itself, every 10 seconds, in place too.
            redis.Redis.from_url(settings.REDIS_URL).delete(KEY_PREFIX + second)
            page.wait_for_function(
                f"!document.body.textContent.includes({json.dumps(second)})", timeout=15_000
            )
            assert page.evaluate("window.__same_page") is True
            assert page.evaluate("document.activeElement.id") == "refresh"
    finally:
        client = redis.Redis.from_url(settings.REDIS_URL)
        for hostname in (first, second):
            if hostname:
                client.delete(KEY_PREFIX + hostname)
