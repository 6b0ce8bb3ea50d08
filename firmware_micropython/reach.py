"""Between sessions: joining the saved network and finding the PC, for the link (link.py).

Loaded only while the link is down, and dropped before a session starts: a session's heap
does not carry this code.
"""

import hal
from link import log, unload


def parse_server(text, path="/device"):
    """A manual PC address "host:port" as an endpoint dict, or None if it is not one."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return {"host": host, "port": int(port), "path": path}


async def join(link):
    """Join the saved network: its IP, or None when the portal must open instead."""
    if link.wlan is None:
        link.wlan = hal.wlan_station()
    if link.wlan.isconnected():
        return link.wlan.ifconfig()[0]
    import wifi

    try:
        return await _join_with(
            link, wifi.Station(link.wlan, power_save=link.cfg["wifi_power_save"])
        )
    finally:
        del wifi
        unload("wifi", "rejoin")  # loaded again only to join again


async def _join_with(link, station):
    link.device.led.show("joining")
    ssid = link.cfg["ssid"]
    log("wifi: joining " + repr(ssid))

    def report(result, ip):
        link.device.beat("link")
        log("wifi: " + station.last)

    import rejoin

    ip = await rejoin.stay_joined(station, ssid, link.cfg["password"], report=report)
    if ip is None:
        link._update(wrong_password_count=link.cfg["wrong_password_count"] + 1)
        link.device.portal_reason = station.last
    elif link.cfg["wrong_password_count"]:
        link._update(wrong_password_count=0)
    return ip


async def endpoint(link, ip):
    """Where the PC is, and how we know: "manual", "cached" or "found" (the link forgets a
    remembered address that failed a few times)."""
    manual = link.cfg["server"]
    if manual:
        found = parse_server(manual)
        if found is not None:
            return found, "manual"
        log("link: the PC address %r is not host:port; searching instead" % manual)
    cached = link.cached
    if cached and not link.pairing():
        return cached, "cached"
    # the WebSocket code leaves the heap while discovery needs it
    unload("wsclient", "wsframe")
    try:
        return await _discover(link, ip)
    finally:
        unload("discovery", "dns")


async def _discover(link, ip):
    import discovery

    link.device.led.show("discovering")
    retry = discovery.Retry()
    while not link.device.portal_reason and link.wlan.isconnected():
        link.device.beat("link")
        # once paired, only our own PC's answers count (the TXT id), and not those that
        # failed the handshake; pairing, any PC's (the one to pair with may have failed it:
        # it forgot this meter, or was never its PC)
        pairing = link.pairing()
        own = link.cfg["pc"] if link.cfg["key"] and not pairing else None
        skip = () if pairing else link.refused
        try:
            found = await discovery.find_server(own_ip=ip, server_id=own, skip=skip)
        except OSError as exc:
            log("discovery: %r" % exc)
            found = None
        if found is not None:
            log("discovery: found %s at %s:%d" % (found["name"], found["host"], found["port"]))
            return {"host": found["host"], "port": found["port"], "path": found["path"]}, "found"
        await link._pause(retry.next())
    return None, None
