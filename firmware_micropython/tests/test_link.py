"""The link task: the idle park, the PC address typed by hand, hello and status as sent."""

import json

import config
import hal
import handshake
import protocol
import reach
import supervisor
from support import use_device_folder

FOLDER = use_device_folder("link")


def device():
    return supervisor.Device(config.defaults())


def test_no_data_for_idle_park_s_parks_the_needle():
    dev = device()
    dev.link.cfg["idle_park_s"] = 2
    dev.needle.show(40)
    dev.link._data()
    assert dev.led.pattern == "linked"
    now = hal.ticks_ms()
    dev.link._idle_park(now + 1500)
    assert not dev.needle.parked
    dev.link._idle_park(now + 2100)
    assert dev.needle.parked
    assert dev.led.pattern == "nodata"


def test_a_manual_pc_address_is_host_and_port():
    assert reach.parse_server("192.168.1.20:47800") == {
        "host": "192.168.1.20",
        "port": 47800,
        "path": "/device",
    }
    assert reach.parse_server("pc.local:80")["host"] == "pc.local"
    for bad in ("192.168.1.20", ":80", "pc:0", "pc:99999", "pc:http"):
        assert reach.parse_server(bad) is None, bad


def test_hello_describes_the_device_as_the_protocol_wants():
    dev = device()
    hello = handshake.hello(dev.link, "0" * 32)
    assert protocol.decode(protocol.encode(hello), "device") == hello
    assert hello["proto"] == 2 and hello["nonce"] == "0" * 32
    assert hello["needles"][0]["output"] == "sim" and hello["id"] == hal.unique_id()
    assert "pc" not in hello  # unpaired
    status = dev.link._status()
    assert protocol.decode(protocol.encode(status), "device")["heap"] >= 0


async def test_a_metric_with_nothing_to_show_parks_and_keeps_its_name():
    dev = device()
    await dev.link.on_message(None, '{"type":"build","value":40,"label":"Build"}')
    assert dev.link.shown[1] == "build Build" and not dev.needle.parked
    park = '{"type":"park","reason":"unavailable","metric":"build","label":"Build"}'
    await dev.link.on_message(None, park)
    assert dev.needle.parked
    assert dev.led.pattern == "nodata"
    assert dev.link.shown[1] == "build Build"  # the pushed label, not the bare id
    await dev.link.on_message(None, '{"type":"park","reason":"unavailable","metric":"vram"}')
    assert dev.link.shown[1] == "vram vram"  # switched to a metric with nothing to show


KEY = "5a" * 32


def _paired():
    cfg = config.defaults()
    cfg["key"], cfg["pc"] = KEY, "pc-1"
    return supervisor.Device(cfg)


def _saved():
    """The settings file as it stands (None before the first save)."""
    try:
        with open(FOLDER + "/sysboy.json") as f:
            return json.loads(f.read())
    except OSError:
        return None


def test_a_paired_meter_names_its_pc_unless_asked_to_pair():
    dev = _paired()
    assert handshake.hello(dev.link, "1" * 32)["pc"] == "pc-1"
    dev.queue_press("press")  # paired: a short press is for the PC
    assert dev.presses == ["press"] and not dev.link.pairing()
    dev.queue_press("long")  # not linked: a long press asks to pair again
    assert dev.presses == ["press"] and dev.link.pairing()
    assert "pc" not in handshake.hello(dev.link, "1" * 32)


def test_an_unpaired_meter_pairs_on_any_press_and_only_for_a_minute():
    dev = device()
    dev.queue_press("press")
    assert dev.presses == [] and dev.link.pairing()
    dev.link.pair_pressed_at = hal.ticks_ms() - 60000  # link.py: a press counts for a minute
    assert not dev.link.pairing()


def test_a_linked_meter_keeps_its_long_press_for_the_pc():
    dev = _paired()
    dev.link.proven = True
    dev.queue_press("long")
    assert dev.presses == ["long"] and not dev.link.pairing()


def test_settings_are_written_only_on_a_real_change_and_at_most_once_a_second():
    dev = device()
    before = _saved()
    dev.link._update(idle_park_s=dev.link.cfg["idle_park_s"])
    assert _saved() == before  # the same value again: nothing written
    dev.link._update(idle_park_s=20)
    dev.link._update(idle_park_s=30)
    dev.link._update(idle_park_s=40)
    assert _saved()["idle_park_s"] == 20  # the first at once, the others wait for the second
    dev.link._flush()
    assert _saved()["idle_park_s"] == 20
    dev.link._saved_at = hal.ticks_ms() - 1000  # link.py: a save at most once a second
    dev.link._flush()
    assert _saved()["idle_park_s"] == 40


async def test_a_press_that_asks_to_pair_while_discovery_runs_skips_the_next_pause():
    import asyncio

    dev = device()
    dev.queue_press("press")  # unpaired: it asks to pair (while discovery ran, say)
    slept = []
    real_sleep = asyncio.sleep

    async def counted(seconds):
        slept.append(seconds)
        await real_sleep(0)

    asyncio.sleep = counted
    try:
        await dev.link._pause(30)  # the backoff after a failed try: skipped
        assert slept == []
        await dev.link._pause(1)  # the press was taken: the next pause sleeps it out
        assert slept == [0.5, 0.5]
    finally:
        asyncio.sleep = real_sleep
