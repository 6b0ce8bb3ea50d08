"""MicroPython program: run the firmware's find_server and print each result as JSON.

Usage: micropython discovery_probe.py TIMEOUT ROUNDS [OWN_IP|-] [MDNS_ADDR|-] [SERVER_ID|-]
"""

import sys

sys.path.insert(0, sys.argv[0].rsplit("/", 1)[0] + "/../../firmware_micropython")

import asyncio
import json

import discovery


def arg(i):
    value = sys.argv[i] if len(sys.argv) > i else "-"
    return None if value == "-" else value


async def main():
    for _ in range(int(sys.argv[2])):
        found = await discovery.find_server(
            own_ip=arg(3), mdns_addr=arg(4), timeout=float(sys.argv[1]), server_id=arg(5)
        )
        print(json.dumps(found))


asyncio.run(main())
