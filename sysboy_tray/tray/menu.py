"""The tray's right-click menu, rebuilt from the app's state each time it is shown."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from sysboy_tray import protocol
from sysboy_tray.app import App, DeviceView
from sysboy_tray.autostart import Autostart
from sysboy_tray.errors import SysboyError
from sysboy_tray.metrics import GIB, GpuInfo, Reading
from sysboy_tray.pairing import PRESS_TO_PAIR, NewMeter
from sysboy_tray.tray.backend import TrayToolkit

log = logging.getLogger(__name__)

UPDATE_RATES_S = (0.5, 1.0, 2.0, 5.0)
FOLLOW = "Same as the tray"
ALLOW_METERS = "Allow meters on this network…"
SHORT_REASON_MAX = 32

Action = Callable[[Any, Any], None]


def short_reason(reading: Reading) -> str:
    """Why a metric cannot be read, in a few words (the full sentence is in About)."""
    if reading.short:
        return reading.short
    reason = (reading.reason or "unavailable").rstrip(".")
    # the first clause, and no longer than a menu item should be
    first = reason.split(": ")[0].split("; ")[0].split(" (")[0]
    if len(first) > SHORT_REASON_MAX:
        first = first[: SHORT_REASON_MAX - 1].rstrip() + "…"
    return first[:1].lower() + first[1:]


def metric_text(info: protocol.MetricInfo, reading: Reading | None) -> str:
    """A metric's menu text; an unavailable one says why, in a few words."""
    if reading is not None and not reading.available:
        return f"{info.label} — {short_reason(reading)}"
    return info.label


def needle_text(device: DeviceView, number: int) -> str:
    """A needle's menu text: its number, and whether the meter's button acts on it."""
    return f"Needle {number} (button)" if number == device.button_needle else f"Needle {number}"


def gpu_text(gpu: GpuInfo) -> str:
    """A GPU's menu text: its number, name and memory."""
    return f"{gpu.index}: {gpu.name} ({gpu.total_bytes / GIB:.0f} GiB)"


def new_meter_text(meter: NewMeter) -> str:
    """The menu's line for an unpaired meter waiting for its button."""
    return f"{PRESS_TO_PAIR} ({meter.name})"


def device_text(device: DeviceView) -> str:
    signal = f", {device.rssi} dBm" if device.rssi is not None else ""
    mark = " — Update available" if device.update_available and not device.update else ""
    return f"{device.name} ({device.address}{signal}){mark}"


class TrayMenu:
    """Builds pystray menus from the app; every action calls the app's thread-safe API."""

    def __init__(
        self,
        app: App,
        toolkit: TrayToolkit,
        autostart: Autostart,
        *,
        open_calibration: Callable[..., object],
        open_folder: Callable[[], object],
        show_about: Callable[[], object],
        quit: Callable[[], object],
        rename: Callable[[str], object] | None = None,
    ) -> None:
        self.app = app
        self.tk = toolkit
        self.autostart = autostart
        self._open_calibration = open_calibration
        self._open_folder = open_folder
        self._show_about = show_about
        self._quit = quit
        self._rename = rename

    # -- helpers ----------------------------------------------------------------

    def _do(self, work: Callable[[], object]) -> Action:
        def action(icon: Any, item: Any) -> None:
            try:
                work()
            except (SysboyError, TimeoutError, OSError) as exc:
                log.warning("menu action failed: %s", exc)

        return action

    def _item(self, text: str, work: Callable[[], object], **options: Any) -> Any:
        return self.tk.MenuItem(text, self._do(work), **options)

    def _submenu(self, text: str, items: Callable[[], Iterator[Any]], **options: Any) -> Any:
        return self.tk.MenuItem(text, self.tk.Menu(lambda: tuple(items())), **options)

    def _radio(
        self, text: str, work: Callable[[], object], checked: bool, enabled: bool = True
    ) -> Any:
        return self._item(text, work, checked=lambda item: checked, radio=True, enabled=enabled)

    # -- the menu ---------------------------------------------------------------

    def menu(self) -> Any:
        """The whole right-click menu (dynamic: rebuilt when shown)."""
        return self.tk.Menu(lambda: tuple(self.items()))

    def state(self) -> str:
        """Everything the menu shows, as one value: when it changes the menu is rebuilt."""
        readings = self.app.readings()
        # the signal strength moves all the time; the menu need not follow every dBm
        devices = [dataclasses.replace(d, rssi=None) for d in self.app.devices()]
        return repr(
            (
                devices,
                self.app.store.settings,
                self.app.metric_infos(),
                sorted((m, r.available, r.reason) for m, r in readings.items()),
                self.app.sampler.interval,
                self.autostart.is_enabled(),
                self.app.firewall(),
                [(m.id, m.name) for m in self.app.new_meters()],
            )
        )

    def items(self) -> Iterator[Any]:
        """The menu's top-level items, from the app's state now."""
        devices = self.app.devices()
        readings = self.app.readings()
        firewall = self.app.firewall()
        if firewall is not None and firewall.blocked and firewall.fixable:
            yield self._item(ALLOW_METERS, self._allow_meters)
        for meter in self.app.new_meters():
            # a line to read, not to click: the press on the meter itself pairs it
            yield self._item(new_meter_text(meter), lambda: None, enabled=False)
        yield self._submenu("Metric", lambda: self._metric_items(None, readings))
        yield from self._gpu_menu()
        yield self._submenu(
            "Devices" if devices else "Devices (none linked)",
            lambda: self._device_items(devices, readings),
            enabled=bool(devices),
        )
        if len(devices) == 1:
            only = devices[0].id
            yield self._item("Calibrate needle…", lambda: self._open_calibration(only))
        else:
            yield self._submenu(
                "Calibrate needle…",
                lambda: (
                    self._item(device_text(d), partial(self._open_calibration, d.id))
                    for d in devices
                ),
                enabled=bool(devices),
            )
        yield self._item(
            "Sweep test", lambda: self.app.send_all(protocol.Sweep()), enabled=bool(devices)
        )
        yield self._submenu("Update rate", self._rate_items)
        yield self._item(
            "Start at login",
            self._toggle_autostart,
            checked=lambda item: self.autostart.is_enabled(),
        )
        yield self._item("Open log folder", self._open_folder)
        yield self._item("About", self._show_about)
        yield self.tk.Menu.SEPARATOR
        yield self._item("Quit", self._quit)

    def _metric_items(
        self, device: DeviceView | None, readings: dict[str, Reading], needle: int | None = None
    ) -> Iterator[Any]:
        current = self.app.store.settings.metric
        if device is not None:
            number = needle or 1
            own = self.app.store.settings.devices.get(device.id)
            chosen = own.needle(number).metric if own is not None else None
            yield self._radio(
                FOLLOW, lambda: self.app.follow_global(device.id, number), chosen is None
            )
            current = chosen or ""
        for info in self.app.metric_infos():
            reading = readings.get(info.id)
            usable = reading is None or reading.available
            yield self._radio(
                metric_text(info, reading),
                partial(self.app.set_metric, info.id, device.id if device else None, needle),
                info.id == current,
                enabled=usable,
            )

    def _device_items(
        self, devices: list[DeviceView], readings: dict[str, Reading]
    ) -> Iterator[Any]:
        for device in devices:
            yield self._submenu(
                device_text(device),
                partial(self._one_device, device, readings),
            )

    def _one_device(self, device: DeviceView, readings: dict[str, Reading]) -> Iterator[Any]:
        if len(device.needles) > 1:
            for needle in device.needles:
                yield self._submenu(
                    needle_text(device, needle.number),
                    partial(self._one_needle, device, needle.number, readings),
                )
        else:
            yield self._submenu("Metric", lambda: self._metric_items(device, readings))
            yield self._item("Identify", lambda: self.app.send(device.id, protocol.Identify()))
            yield self._item("Calibrate…", lambda: self._open_calibration(device.id))
        yield from self._rename_item(device)
        yield self._item(
            device.update if device.updating else "Update firmware",
            lambda: self.app.update_firmware(device.id),
            enabled=device.update_available and not device.updating,
        )
        yield self._item("Forget", lambda: self.app.forget(device.id))

    def _gpu_menu(self) -> Iterator[Any]:
        """GPU ▸, to pick the GPU the GPU metrics read: only with two or more."""
        found, shown = self.app.gpus()
        if len(found) < 2:
            return
        yield self._submenu(
            "GPU",
            lambda: (
                self._radio(gpu_text(gpu), partial(self.app.set_gpu, gpu.index), gpu == shown)
                for gpu in found
            ),
        )

    def _rename_item(self, device: DeviceView) -> Iterator[Any]:
        rename = self._rename
        if rename is not None:
            yield self._item("Rename…", lambda: rename(device.id))

    def _one_needle(
        self, device: DeviceView, number: int, readings: dict[str, Reading]
    ) -> Iterator[Any]:
        yield self._submenu("Metric", lambda: self._metric_items(device, readings, number))
        yield self._item("Identify", lambda: self.app.send(device.id, protocol.Identify(number)))
        yield self._item("Calibrate…", lambda: self._open_calibration(device.id, number))

    def _rate_items(self) -> Iterator[Any]:
        for seconds in UPDATE_RATES_S:
            yield self._radio(
                f"{seconds:g} s",
                partial(self.app.set_interval, seconds),
                abs(self.app.sampler.interval - seconds) < 1e-9,
            )

    def _allow_meters(self) -> None:
        if not self.app.allow_meters():
            self.app.notice(
                "The firewall was left as it was (the Windows prompt was declined or "
                "could not open)."
            )

    def _toggle_autostart(self) -> None:
        if self.autostart.is_enabled():
            self.autostart.disable()
        else:
            self.autostart.enable()
