"""Staying on the saved network (linked mode and update mode): a join retried forever with
backoff, until it works or the network has refused the password for long enough. Setup mode
joins once per form (wifi.py) and never loads this."""

import asyncio

import hal
from micropython import const

_JOINED = const("joined")  # wifi.py's results
# the results that say the saved settings may be wrong
_REFUSED = const(("wrong password", "wrong password or weak signal"))
_PORTAL_AFTER_REFUSALS = const(3)


async def stay_joined(station, ssid, password, report=None, first_delay_s=1.0, max_delay_s=30.0):
    """Join with `station` (a wifi.Station) and retry forever with backoff: the IP once
    joined, or None once the network has refused the saved password in every try for the
    station's `portal_after_s` (and at least 3 times). A router that is down, or rebooting,
    never gives up. `report(result, ip)` hears each try."""
    if station.connected():
        return station.ip()  # already joined, e.g. by the setup portal a moment ago
    delay = first_delay_s
    refused_since = None  # the first refusal in a row, in ticks
    refusals = 0
    while True:
        result, ip = await station.join(ssid, password)
        if report is not None:
            report(result, ip)
        if result == _JOINED:
            return ip
        if result not in _REFUSED:
            refused_since, refusals = None, 0  # the router is away: not the password's fault
        else:
            if refused_since is None:
                refused_since = hal.ticks_ms()
            refusals += 1
            spread = hal.ticks_diff(hal.ticks_ms(), refused_since) / 1000
            if refusals >= _PORTAL_AFTER_REFUSALS and spread >= station.portal_after_s:
                return None
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_delay_s)
