"""The supervisor: failing tasks are logged and restarted, the watchdog is fed only while
every task is alive, presses are queued, and no stale value is left standing."""

import asyncio

import config
import hal
import notes
import supervisor
from support import use_device_folder

FOLDER = use_device_folder("app")
supervisor.RESTART_S = 0.01
supervisor.FEED_EVERY_S = 0.01
# supervisor.py's and app.py's private constants
CRASH_LIMIT = 5
LINK_STUCK_S = 120
FIRST_SETUP = "Choose the Wi-Fi network for the meter."


def device():
    return supervisor.Device(config.defaults())


class Flaky:
    """A task that fails `times` times in different ways, then runs quietly."""

    def __init__(self, times):
        self.times = times
        self.calls = 0

    async def __call__(self):
        self.calls += 1
        if self.calls <= self.times:
            kinds = (ValueError("bad value"), OSError(113), MemoryError(), KeyError("k"))
            raise kinds[self.calls % len(kinds)]
        while True:
            await asyncio.sleep(1)


async def _until(check, limit_s=5):
    waited = 0
    while not check():
        await asyncio.sleep(0.01)
        waited += 0.01
        assert waited < limit_s, "gave up waiting"


async def test_a_failing_task_is_restarted_until_it_runs():
    dev = device()
    flaky = Flaky(3)
    task = asyncio.create_task(dev.supervise((("flaky", flaky),)))
    await _until(lambda: flaky.calls == 4)
    await asyncio.sleep(0.05)
    assert dev.crashes["flaky"] == 3
    assert dev.alive()
    fed = dev.watchdog.feeds
    await asyncio.sleep(0.05)
    assert dev.watchdog.feeds > fed  # alive: the watchdog is fed
    task.cancel()
    for t in dev.tasks:
        t.cancel()


async def test_a_task_that_keeps_failing_starves_the_watchdog():
    dev = device()
    flaky = Flaky(1000)
    task = asyncio.create_task(dev.supervise((("broken", flaky), ("fine", Flaky(0)))))
    await _until(lambda: dev.crashes.get("broken", 0) >= CRASH_LIMIT)
    assert not dev.alive()
    fed = dev.watchdog.feeds
    await asyncio.sleep(0.1)
    assert dev.watchdog.feeds == fed  # the hardware watchdog will restart the board
    assert flaky.calls >= CRASH_LIMIT  # it is still being restarted meanwhile
    task.cancel()
    for t in dev.tasks:
        t.cancel()


async def test_a_task_that_returns_is_started_again():
    dev = device()
    calls = []

    async def once():
        calls.append(1)
        if len(calls) > 2:
            await asyncio.sleep(10)

    task = asyncio.create_task(dev.supervise((("once", once),)))
    await _until(lambda: len(calls) == 3)
    task.cancel()
    for t in dev.tasks:
        t.cancel()


async def test_a_failing_link_parks_the_needle():
    dev = device()
    dev.needle.show(70)
    dev.needle.step(20)

    async def broken_link():
        raise OSError("radio gone")

    task = asyncio.create_task(dev.supervise((("link", broken_link),)))
    await _until(lambda: dev.crashes.get("link", 0) >= 1)
    task.cancel()
    for t in dev.tasks:
        t.cancel()
    assert dev.needle.parked
    assert dev.needle.target == 0.0
    assert dev.led.pattern == "nodata"


def test_a_stuck_link_starves_the_watchdog():
    dev = device()
    dev.beat("link")
    dev.crashes["link"] = 0
    assert dev.alive()
    dev.beats["link"] = hal.ticks_ms() - (LINK_STUCK_S + 1) * 1000
    assert not dev.alive()
    dev.beats["link"] = None  # the portal: exempt, it keeps its own idle limit
    assert dev.alive()


def test_presses_wait_offline_and_only_the_last_eight_are_kept():
    dev = device()
    dev.link.cfg["key"], dev.link.cfg["pc"] = "5a" * 32, "pc-1"  # paired, not linked
    for _ in range(11):
        dev.queue_press("press")
    assert len(dev.presses) == 8 and not dev.link.pairing()
    dev.queue_press("long")  # not linked: a long press asks to pair again instead
    assert len(dev.presses) == 8 and dev.link.pairing()


def test_a_portal_request_restarts_the_board_into_setup_mode_once():
    dev = device()
    assert dev.link is not None  # a saved network (or none yet, in a test): linked mode
    try:
        dev.open_setup("The button was held: change the settings here.")
        raise AssertionError("open_setup returned instead of resetting the board")
    except SystemExit as exc:  # the sim HAL's reset
        assert exc.args[0] == 3
    assert dev.needle.target == 0.0
    assert notes.setup_asked() == "The button was held: change the settings here."
    assert notes.setup_asked() is None  # asked once: the start after it is linked again


def test_setup_mode_holds_no_link():
    dev = supervisor.Device(config.defaults(), FIRST_SETUP)
    assert dev.link is None and dev.setup == FIRST_SETUP


def test_presses_in_setup_mode_are_let_go():
    dev = supervisor.Device(config.defaults(), FIRST_SETUP)
    dev.queue_press("press")  # no link to hand it to: neither kept nor an error
    dev.queue_press("long")
    assert dev.presses == []
