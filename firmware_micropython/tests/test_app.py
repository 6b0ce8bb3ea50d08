"""The supervisor: failing tasks are logged and restarted, the watchdog is fed only while
every task is alive, presses are queued, and no stale value is left standing."""

import asyncio
import os

import app
import config
import hal
import led


def _use_device_folder():
    folder = "/tmp/sysboy-app-" + "".join("%02x" % b for b in os.urandom(6))
    os.mkdir(folder)
    environ = getattr(os, "environ", None)
    if environ is not None:
        environ["SYSBOY_DEVICE_DIR"] = folder  # CPython
    else:
        os.putenv("SYSBOY_DEVICE_DIR", folder)  # MicroPython's unix port
    return folder


FOLDER = _use_device_folder()
app.RESTART_S = 0.01
app.FEED_EVERY_S = 0.01


def device():
    return app.Device(config.defaults())


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
    await _until(lambda: dev.crashes.get("broken", 0) >= app.CRASH_LIMIT)
    assert not dev.alive()
    fed = dev.watchdog.feeds
    await asyncio.sleep(0.1)
    assert dev.watchdog.feeds == fed  # the hardware watchdog will restart the board
    assert flaky.calls >= app.CRASH_LIMIT  # it is still being restarted meanwhile
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
    assert dev.led.pattern == led.NODATA


def test_a_stuck_link_starves_the_watchdog():
    dev = device()
    dev.beat("link")
    dev.crashes["link"] = 0
    assert dev.alive()
    dev.beats["link"] = hal.ticks_ms() - (app.LINK_STUCK_S + 1) * 1000
    assert not dev.alive()
    dev.beats["link"] = None  # the portal: exempt, it keeps its own idle limit
    assert dev.alive()


def test_presses_wait_offline_and_only_the_last_eight_are_kept():
    dev = device()
    for i in range(11):
        dev.queue_press("press" if i % 2 else "long")
    assert len(dev.presses) == 8
    assert dev.presses[0] == "press" and dev.presses[-1] == "long"  # the oldest three dropped


def test_no_data_for_idle_park_s_parks_the_needle():
    dev = device()
    dev.cfg["idle_park_s"] = 2
    dev.needle.show(40)
    dev._data()
    assert dev.led.pattern == led.LINKED
    now = hal.ticks_ms()
    dev._idle_park(now + 1500)
    assert not dev.needle.parked
    dev._idle_park(now + 2100)
    assert dev.needle.parked
    assert dev.led.pattern == led.NODATA


def test_a_manual_pc_address_is_host_and_port():
    assert app.parse_server("192.168.1.20:47800") == {
        "host": "192.168.1.20",
        "port": 47800,
        "path": "/device",
    }
    assert app.parse_server("pc.local:80")["host"] == "pc.local"
    for bad in ("192.168.1.20", ":80", "pc:0", "pc:99999", "pc:http"):
        assert app.parse_server(bad) is None, bad


def test_hello_describes_the_device_as_the_protocol_wants():
    import protocol

    dev = device()
    hello = dev._hello()
    assert protocol.decode(protocol.encode(hello), "device") == hello
    assert hello["output"] == "sim" and hello["id"] == hal.unique_id()
    status = dev._status()
    assert protocol.decode(protocol.encode(status), "device")["heap"] >= 0
