"""The link task: the idle park, the PC address typed by hand, hello and status as sent."""

import app
import config
import hal
import led
import link
import protocol
from support import use_device_folder

FOLDER = use_device_folder("link")


def device():
    return app.Device(config.defaults())


def test_no_data_for_idle_park_s_parks_the_needle():
    dev = device()
    dev.link.cfg["idle_park_s"] = 2
    dev.needle.show(40)
    dev.link._data()
    assert dev.led.pattern == led.LINKED
    now = hal.ticks_ms()
    dev.link._idle_park(now + 1500)
    assert not dev.needle.parked
    dev.link._idle_park(now + 2100)
    assert dev.needle.parked
    assert dev.led.pattern == led.NODATA


def test_a_manual_pc_address_is_host_and_port():
    assert link.parse_server("192.168.1.20:47800") == {
        "host": "192.168.1.20",
        "port": 47800,
        "path": "/device",
    }
    assert link.parse_server("pc.local:80")["host"] == "pc.local"
    for bad in ("192.168.1.20", ":80", "pc:0", "pc:99999", "pc:http"):
        assert link.parse_server(bad) is None, bad


def test_hello_describes_the_device_as_the_protocol_wants():
    dev = device()
    hello = dev.link._hello()
    assert protocol.decode(protocol.encode(hello), "device") == hello
    assert hello["output"] == "sim" and hello["id"] == hal.unique_id()
    status = dev.link._status()
    assert protocol.decode(protocol.encode(status), "device")["heap"] >= 0


async def test_a_metric_with_nothing_to_show_parks_and_keeps_its_name():
    dev = device()
    await dev.link.on_message(None, '{"type":"build","value":40,"label":"Build"}')
    assert dev.link.shown[1] == "build Build" and not dev.needle.parked
    park = '{"type":"park","reason":"unavailable","metric":"build","label":"Build"}'
    await dev.link.on_message(None, park)
    assert dev.needle.parked
    assert dev.led.pattern == led.NODATA
    assert dev.link.shown[1] == "build Build"  # the pushed label, not the bare id
    await dev.link.on_message(None, '{"type":"park","reason":"unavailable","metric":"vram"}')
    assert dev.link.shown[1] == "vram vram"  # switched to a metric with nothing to show
