"""The factory reset (the button held 12 s, in either mode): loaded only when it is asked
for, so neither mode's heap carries its code."""

import asyncio

import config
import hal


async def reset(device):
    """Forget every setting, sweep the needles as the confirmation the user sees, restart."""
    print("button held 12 s: factory reset")
    config.erase()
    needles = device.needles
    if device.link is None:  # setup mode holds no needle code: load it for the sweep
        from needle import Needle, Needles

        needles = Needles([Needle(one.output) for one in needles.all])
        device.tasks.append(asyncio.create_task(needles.run()))
    for needle in needles.all:
        needle.sweep()
    while needles.moving:
        await asyncio.sleep(0.1)
    hal.reset()
