"""The portal's joins: the saved network retried behind the page, and a form sent meanwhile."""

import asyncio

import config
import portal
from support import FW, use_device_folder

FOLDER = use_device_folder("portal-join")


class GatedStation:
    """A station whose joins all work, each once the test opens the gate."""

    def __init__(self):
        self.joins = []
        self.gate = asyncio.Event()

    async def join(self, ssid, password):
        self.joins.append((ssid, password))
        await self.gate.wait()
        return FW.JOINED, "10.0.0.9"

    def connected(self):
        return False

    def channel(self, ssid):
        return None

    def scan(self):
        return []


class FormRequest:
    """What httpparse hands the portal for a posted form."""

    def __init__(self, body):
        self.body = body
        self.headers = {"content-type": "application/x-www-form-urlencoded"}

    def header(self, name, default=""):
        return self.headers.get(name, default)


def _portal(station):
    cfg = config.defaults()
    cfg.update(ssid="Old", password="old-password", wrong_password_count=1)
    page = portal.Portal(cfg, "refused", station, "192.168.4.1", "x", 1, 1, "127.0.0.1")
    page.retry_s = 0  # the saved network is what failed: retry it, here at once
    return page


async def _settle(page):
    while page.joining is not None:
        await asyncio.sleep(0.01)


async def test_a_retry_of_the_saved_network_that_gets_in_closes_the_portal():
    station = GatedStation()
    page = _portal(station)
    page._retry_saved()
    station.gate.set()
    await asyncio.sleep(0)
    await _settle(page)
    assert station.joins == [("Old", "old-password")]
    assert page._finished()  # nobody waits for a result page
    assert page.result is None  # the page never shows a join the user did not ask for


async def test_a_form_sent_during_a_retry_is_joined_after_it():
    station = GatedStation()
    page = _portal(station)
    page._retry_saved()
    await asyncio.sleep(0)
    assert station.joins == [("Old", "old-password")] and page.retrying
    body = "ssid=New&password=new-password&token=" + page.token
    reply = page._join_form(FormRequest(body.encode()))
    assert b"303" in reply.split(b"\r\n")[0] and page.pending == ("New", "new-password")
    assert config.load()["ssid"] == "New"
    station.gate.set()
    await _settle(page)
    assert not page._finished()  # the old network got in, but the user asked for the new one
    page.told = True  # the user has seen what happens next
    page._start_pending()
    await _settle(page)
    assert station.joins[-1] == ("New", "new-password")
    assert page._finished() is False and page.joined_at is not None
    assert page.result[0] == FW.JOINED and page.result[1] == "New"


async def test_no_retry_behind_a_portal_the_user_asked_for():
    station = GatedStation()
    page = _portal(station)
    page.retry_s = None
    page._retry_saved()
    assert page.joining is None and station.joins == []
