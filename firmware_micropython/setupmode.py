"""Setup mode's part of the supervisor (supervisor.py): needles that only rest, and the
portal until a join worked. Loaded only in setup mode: linked mode's heap never holds it."""

import hal
import portal


class Still:
    """A needle in setup mode: its output held at 0."""

    def __init__(self, output):
        self.output = output
        output.write(0.0)


class Resting:
    """Setup mode's needles: they only rest, so their motion code (needle.py, about 5 KB
    of heap on the 32-bit port) stays out of the setup heap."""

    def __init__(self, outputs):
        self.all = [Still(output) for output, _ in outputs]

    def park(self):
        """Hold every output at 0."""
        for one in self.all:
            one.output.write(0.0)


async def run(device):
    """The portal until a join worked, then a restart into linked mode."""
    device.needles.park()
    device.led.show("portal")
    print("portal: " + device.setup)
    device.beats["link"] = None  # the portal keeps its own idle limit
    # the saved network is tried behind the portal only when it is what failed (it
    # refused the password), not when the user asked for the portal to change it
    cfg = device.cfg
    await portal.run_portal(cfg, device.setup, cfg["wrong_password_count"] > 0)
    print("setup: settings saved; restarting into linked mode")
    hal.reset()
