"""The live page explains a missing microphone (issue 13): opened over plain http from another
computer it says the microphone needs HTTPS and links to the https address of the same page;
a blocked or missing microphone gets a banner that says what to do, not only a status word."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import chromium, sign_in
from tests.factories import PASSWORD, make_user
from tests.servers import running_web, running_web_https

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Not localhost: a browser treats http://localhost and 127.0.0.1 as secure, any other name over
# http not, and there navigator.mediaDevices is undefined.
HOST = "stt.lan"
AT_HOST = [f"--host-resolver-rules=MAP {HOST} 127.0.0.1"]


def on_host(url: str) -> str:
    return url.replace("127.0.0.1", HOST)


def collect_errors(page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def test_plain_http_at_a_lan_name_links_to_https(tmp_path):
    user = make_user("colleague")
    with (
        running_web_https(tmp_path / "data", hosts=(HOST,)) as web,
        chromium(AT_HOST) as browser,
    ):
        # The certificate is this installation's own: the https page is checked below without
        # installing its authority (tests/live/test_live_page_https.py does that).
        page = browser.new_context(ignore_https_errors=True).new_page()
        errors = collect_errors(page)
        http = on_host(web.http)
        sign_in(page, http, user.username, PASSWORD)
        page.goto(http + "/")
        assert page.evaluate("!window.isSecureContext && navigator.mediaDevices === undefined")
        banner = page.locator("#mic-banner")
        assert banner.is_visible() and banner.get_attribute("role") == "alert"
        assert "HTTPS" in banner.inner_text()
        https = f"https://{HOST}:{web.https_port}/"
        assert banner.locator("a").first.get_attribute("href") == https
        assert banner.locator("a").first.inner_text() == https
        assert page.locator("#start").is_disabled()
        # The platform made its certificate: the banner offers its authority too.
        authority = banner.locator("a[href='/tls/ca.crt']")
        authority.wait_for(timeout=5_000)
        assert "microphone unavailable" not in page.locator("#conn").inner_text()

        # The link leads to the same page, with the microphone and without the banner.
        banner.locator("a").first.click()
        page.wait_for_url(https)
        page.wait_for_selector("#start:not([disabled])")
        assert page.evaluate("window.isSecureContext && !!navigator.mediaDevices")
        assert not page.locator("#mic-banner").is_visible()
        assert errors == []


def test_without_https_the_banner_sends_to_the_operator():
    user = make_user("colleague")
    with running_web(extra_env={"HTTPS_PORT": "0"}) as url, chromium(AT_HOST) as browser:
        page = browser.new_page()
        errors = collect_errors(page)
        sign_in(page, on_host(url), user.username, PASSWORD)
        page.goto(on_host(url) + "/")
        banner = page.locator("#mic-banner")
        assert banner.is_visible()
        text = banner.inner_text()
        assert "HTTPS" in text and "operator" in text, text
        assert banner.locator("a").count() == 0
        assert page.locator("#start").is_disabled()
        assert errors == []


def test_a_blocked_or_missing_microphone_says_what_to_do():
    user = make_user("speaker")
    with running_web() as url:
        # A microphone is there (Chromium's fake one) but the page may not have it: no
        # permission granted in the context, and prompts answered "block" as a person would.
        with chromium(["--use-fake-device-for-media-stream", "--deny-permission-prompts"]) as b:
            page = b.new_context().new_page()
            errors = collect_errors(page)
            sign_in(page, url, user.username, PASSWORD)
            page.goto(url + "/")
            assert page.evaluate("window.isSecureContext")  # 127.0.0.1 is
            assert not page.locator("#mic-banner").is_visible()
            page.click("#start")
            banner = page.locator("#mic-banner")
            banner.wait_for(state="visible", timeout=10_000)
            text = banner.inner_text()
            assert "blocked" in text and "site settings" in text, text
            assert banner.get_attribute("role") == "alert"
            assert page.locator("#start").is_enabled()
            assert errors == []

        if Path("/dev/snd").exists():
            pytest.skip("this machine has a sound card: a missing microphone cannot be staged")
        # Permission given, but no microphone at all (this machine has none).
        with chromium(["--use-fake-ui-for-media-stream"]) as b:
            page = b.new_page()
            errors = collect_errors(page)
            sign_in(page, url, user.username, PASSWORD)
            page.goto(url + "/")
            page.click("#start")
            banner = page.locator("#mic-banner")
            banner.wait_for(state="visible", timeout=10_000)
            text = banner.inner_text()
            assert "No microphone" in text and "Plug one in" in text, text
            assert errors == []
