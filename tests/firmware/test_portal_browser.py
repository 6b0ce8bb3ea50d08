"""A real headless Chromium sets the meter up through its portal, as a phone user would."""

from __future__ import annotations

import time
from pathlib import Path

from tests.conftest import scaled
from tests.firmware.cdp import Browser
from tests.firmware.portal_sim import Portal

PHONE_WIDTH = 390


def _wait_for_text(browser: Browser, words: str, timeout: float) -> str:
    """The page's text once it shows `words` and has loaded whole: the portal sends a page
    in pieces, so its first words show before the rest has come."""
    deadline = time.monotonic() + timeout
    while (
        words not in (text := browser.text())
        or browser.evaluate("document.readyState") != "complete"
    ):
        assert time.monotonic() < deadline, f"{words!r} never showed; the page says:\n{text}"
        time.sleep(0.2)
    return browser.text()


def test_chromium_fills_the_form_and_the_meter_joins(tmp_path: Path) -> None:
    with Portal(tmp_path) as portal, Browser(tmp_path / "profile") as browser:
        browser.phone(PHONE_WIDTH)
        browser.open(portal.home)
        assert "Sysboy2000 setup" in browser.text()

        # usable on a phone: nothing wider than the screen, fields big enough not to zoom
        assert browser.evaluate("document.documentElement.scrollWidth") <= PHONE_WIDTH
        font = browser.evaluate("getComputedStyle(document.querySelector('#password')).fontSize")
        assert float(font.removesuffix("px")) >= 16
        button = browser.evaluate("document.querySelector('form.card button').offsetHeight")
        assert button >= 40, "the submit button is a comfortable tap target"
        png = browser.screenshot(tmp_path / "portal-phone.png")
        assert png.startswith(b"\x89PNG")

        # tap the strongest network: the page comes back with its name filled in
        first = browser.evaluate("document.querySelector('.nets a span').textContent")
        assert first
        browser.click(".nets a")
        browser.wait_event("Page.loadEventFired", scaled(15))
        assert browser.evaluate("document.querySelector('#ssid').value") == first

        browser.type_into("#password", "correct horse")
        browser.type_into("#server", "192.168.1.20:47800")
        browser.click("form.card button")

        text = _wait_for_text(browser, "Joined", scaled(45))
        assert first in text
        assert "setup network closes" in text
        assert browser.evaluate("location.pathname") == "/result"

        saved = portal.saved()
        assert saved["ssid"] == first
        assert saved["password"] == "correct horse"
        assert saved["server"] == "192.168.1.20:47800"
