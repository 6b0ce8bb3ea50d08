"""MicroPython program: drive the firmware's WebSocket client through one scenario.

Usage: micropython ws_probe.py PORT SCENARIO. Prints one line per observation.
"""

import sys

sys.path.insert(0, sys.argv[0].rsplit("/", 1)[0] + "/../../firmware_micropython")

import asyncio

import wsclient
from wsframe import WSError

PORT = int(sys.argv[1])
SCENARIO = sys.argv[2]


async def echo():
    ws = await wsclient.connect("127.0.0.1", PORT, "/echo")
    await ws.send("hello")
    print("got", await ws.recv())
    await ws.send("\u00e9" * 100)
    reply = await ws.recv()
    print("accent", len(reply), reply == "\u00e9" * 100)
    await ws.send("x" * 4096)
    print("len", len(await ws.recv()))
    for i in range(300):
        await ws.send('{"n":' + str(i) + "}")
    ok = 0
    for i in range(300):
        if await ws.recv() == '{"n":' + str(i) + "}":
            ok += 1
    print("many", ok)
    await ws.close()
    print("closed", ws.closed, ws.close_code)
    try:
        await ws.send("late")
    except wsclient.WSClosed:
        print("send after close refused")


async def expect_message(path):
    ws = await wsclient.connect("127.0.0.1", PORT, path)
    print("got", await ws.recv())
    await ws.close()


async def expect_refusal(path):
    ws = await wsclient.connect("127.0.0.1", PORT, path)
    try:
        print("got", await ws.recv())
    except wsclient.WSClosed as e:
        print("closed", e.code, e.reason)
    except WSError as e:
        print("refused", e.code)
    print("state", ws.closed, ws.close_code)


async def silence():
    ws = await wsclient.connect("127.0.0.1", PORT, "/silence")
    try:
        await asyncio.wait_for(ws.recv(), 0.3)
    except asyncio.TimeoutError:  # noqa: UP041 (MicroPython's is not the builtin)
        print("timeout")
    try:
        await ws.recv(0.3)  # recv's own timeout: the link stays as it was
    except asyncio.TimeoutError:  # noqa: UP041
        print("timeout", ws.closed)
    await ws.send("go")
    print("got", await ws.recv(5))
    await ws.close()


async def close_while_receiving():
    ws = await wsclient.connect("127.0.0.1", PORT, "/silence")
    reader = asyncio.create_task(ws.recv())
    await asyncio.sleep(0.1)
    await ws.close()
    print("closed", ws.closed, ws.close_code)
    try:
        await asyncio.wait_for(reader, 5)
        print("recv returned")
    except (WSError, OSError) as e:
        print("recv failed", type(e).__name__)


async def reconnect():
    buffer = bytearray(4096 + 14)  # taken once, as the link takes its own at boot
    first = await wsclient.connect("127.0.0.1", PORT, "/echo", buf=buffer)
    await first.send("first")
    print("got", await first.recv())
    await first.close()
    second = await wsclient.connect("127.0.0.1", PORT, "/echo", buf=buffer)
    print("same buffer", second._parser.buf is buffer)
    await second.send("again")
    print("got", await second.recv())
    await second.close()


async def handshake():
    try:
        await wsclient.connect("127.0.0.1", PORT, "/", timeout=2)
        print("connected")
    except WSError as e:
        print("refused", e)
    except OSError as e:
        print("oserror", e)


async def connect_timeouts():
    # a server whose backlog is full never answers the SYN: every connect times out
    import os

    def open_files():
        return len(os.listdir("/proc/self/fd"))

    before = open_files()
    for _ in range(5):
        try:
            await wsclient.connect("127.0.0.1", PORT, "/", timeout=0.2)
            print("connected")
        except OSError as e:
            print("oserror", e)
    print("sockets left open", open_files() - before)


async def main():
    if SCENARIO == "echo":
        await echo()
    elif SCENARIO in ("fragments", "ping"):
        await expect_message("/" + SCENARIO)
    elif SCENARIO == "silence":
        await silence()
    elif SCENARIO == "close_while_receiving":
        await close_while_receiving()
    elif SCENARIO == "reconnect":
        await reconnect()
    elif SCENARIO == "handshake":
        await handshake()
    elif SCENARIO == "connect_timeouts":
        await connect_timeouts()
    else:
        await expect_refusal("/" + SCENARIO)


asyncio.run(main())
