"""The tray icon: a gauge of the global metric, a tooltip, and a menu that follows the app."""

from __future__ import annotations

import logging
import threading
from typing import Any

from PIL import Image

from sysboy_tray.app import App
from sysboy_tray.errors import TrayUnavailable
from sysboy_tray.metrics import Reading
from sysboy_tray.pairing import PRESS_TO_PAIR
from sysboy_tray.tray.backend import TrayToolkit, stop_icon
from sysboy_tray.tray.gauge import GaugeFace, GaugeState, draw_gauge, needs_redraw
from sysboy_tray.tray.menu import TrayMenu
from sysboy_tray.tray.popup import Popup

log = logging.getLogger(__name__)

TOOLTIP_MAX = 127  # Windows cuts tray tooltips at 128 characters
# redraws come at most this often, however fast the readings change
MIN_REDRAW_GAP_S = 0.25
# changes no event announces (Task Manager's start-up switch) are looked for this often
LOOK_AGAIN_S = 5.0
FIREWALL_TITLE = "Meters cannot reach Sysboy"
FIREWALL_HINT = " Open the gauge icon's menu and choose Allow meters on this network…"


def tooltip(
    label: str, reading: Reading | None, devices: int, updates: str = "", new_meters: int = 0
) -> str:
    """For example: `VRAM 60.5 % (9.7 / 16.0 GiB) · 1 device`; a firmware update under way
    comes first (`meter1: updating to 0.2.0: 45 % · VRAM ...`), and before it a meter
    waiting to pair (`New meter found — press its button to pair · ...`)."""
    linked = f"{devices} device" + ("" if devices == 1 else "s")
    if reading is None:
        text = f"{label} · {linked}"
    elif reading.percent is None:
        text = f"{label} unavailable: {reading.reason} · {linked}"
    else:
        detail = f" ({reading.detail})" if reading.detail else ""
        text = f"{label} {reading.percent:.1f} %{detail} · {linked}"
    if updates:
        text = f"{updates} · {text}"
    if new_meters:
        several = f" ({new_meters} meters)" if new_meters > 1 else ""
        text = f"{PRESS_TO_PAIR}{several} · {text}"
    return text if len(text) <= TOOLTIP_MAX else text[: TOOLTIP_MAX - 1] + "…"


def face_for(reading: Reading | None, devices: int) -> GaugeFace:
    """Grey with no device, amber when the metric cannot be read, green when linked."""
    if reading is not None and not reading.available:
        return GaugeFace(None, GaugeState.UNAVAILABLE)
    percent = reading.percent if reading is not None else None
    return GaugeFace(percent, GaugeState.LINKED if devices else GaugeState.NO_DEVICE)


class TrayIcon:
    """Owns the pystray icon; redraws it from its own thread when the app changes."""

    def __init__(self, app: App, toolkit: TrayToolkit, menu: TrayMenu) -> None:
        self.app = app
        self.face: GaugeFace | None = None
        self.redraws = 0
        self._menu = menu
        self._menu_state: str | None = None
        self._has_menu = toolkit.has_menu
        self._has_notification = toolkit.has_notification
        self._size = toolkit.icon_size
        # what the user is still to be told, and the firewall verdict last told
        self._pending: list[tuple[str, str]] = []
        self._told_firewall: object = None
        self.told: list[tuple[str, str]] = []
        self._told_updates: dict[str, str] = {}  # device id -> the update outcome told
        self._told_new: set[str] = set()  # unpaired meters the user was told of
        self.menu_updates = 0
        self._changed = threading.Event()
        self._stopping = threading.Event()
        icon_class = toolkit.Icon
        # Without a toolkit menu (plain X11), a click opens the same menu drawn with Tk.
        self.popup: Popup | None = None
        if toolkit.has_menu:
            icon_menu = menu.menu()
        else:
            self.popup = Popup(menu.menu())
            icon_menu = self.popup.opener(toolkit.Menu, toolkit.MenuItem)
            if toolkit.name == "xorg":
                from sysboy_tray.tray.xorg import x11_icon

                icon_class = x11_icon(toolkit.Icon)
        self.icon: Any = icon_class(
            "sysboy",
            draw_gauge(None, GaugeState.NO_DEVICE, self._size),
            "Sysboy",
            menu=icon_menu,
        )
        # the plain X11 icon draws the gauge itself, at each size the tray gives it
        self.icon.paint = self._paint
        self._thread = threading.Thread(target=self._follow, name="sysboy-tray", daemon=True)

    def refresh(self) -> None:
        """Bring icon, tooltip and menu up to date with the app (from any thread)."""
        devices = self.app.devices()
        metric = self.app.store.settings.metric
        reading = self.app.readings().get(metric)
        label = next((m.label for m in self.app.metric_infos() if m.id == metric), metric)
        face = face_for(reading, len(devices))
        if needs_redraw(self.face, face):
            self.face = face  # before the image: setting it may paint at once
            self.icon.icon = draw_gauge(face.percent, face.state, self._size)
            self.redraws += 1
        updates = self.app.updates()
        busy = "; ".join(f"{d}: {u.text()}" for d, u in sorted(updates.items()) if not u.finished)
        new_meters = self.app.new_meters()
        title = tooltip(label, reading, len(devices), busy, len(new_meters))
        for meter in new_meters:
            # once per meter while the app runs: an unpaired meter comes back every minute
            if meter.id not in self._told_new:
                self._told_new.add(meter.id)
                self.tell(f"{PRESS_TO_PAIR}: {meter.name} ({meter.address}).", "New meter")
        for device_id, update in updates.items():
            if update.finished and self._told_updates.get(device_id) != update.text():
                self._told_updates[device_id] = update.text()
                self.tell(f"Meter {device_id}: {update.text()}.", "Firmware update")
        if title != self.icon.title:
            self.icon.title = title
        # pystray's Windows menu is built once and only rebuilt by update_menu(): any
        # change made outside the menu (sysboy metric, a push, Task Manager) needs one
        state = self._menu.state()
        if state != self._menu_state and self._has_menu and self.icon.visible:
            self._menu_state = state  # a hidden icon builds its menu when shown
            self.icon.update_menu()
            self.menu_updates += 1
        self._tell_news()

    def _paint(self, size: int) -> Image.Image:
        """The gauge as shown now, drawn at `size` pixels."""
        face = self.face or GaugeFace(None, GaugeState.NO_DEVICE)
        return draw_gauge(face.percent, face.state, size)

    def tell(self, message: str, title: str = "Sysboy") -> None:
        """Show the user a notification once the icon is up (from any thread)."""
        self._pending.append((title, message))
        self._changed.set()

    def _tell_news(self) -> None:
        verdict = self.app.firewall()
        if verdict is not None and verdict != self._told_firewall:
            sentence = verdict.summary[:1].upper() + verdict.summary[1:] + "."
            if verdict.blocked:
                self._told_firewall = verdict
                self._pending.append((FIREWALL_TITLE, sentence + FIREWALL_HINT))
            elif self._told_firewall is not None:  # it was blocked: say it is fixed
                self._told_firewall = None
                self._pending.append(("Sysboy", sentence))
        self._pending.extend(("Sysboy", text) for text in self.app.take_notices())
        if not self.icon.visible:
            return
        while self._pending:
            title, message = self._pending.pop(0)
            self.told.append((title, message))
            log.info("telling the user: %s: %s", title, message)
            if not self._has_notification:
                continue
            try:
                self.icon.notify(message, title)
            except Exception as exc:  # a tray without a notification service
                log.warning("cannot show a notification: %s", exc)

    def _follow(self) -> None:
        while not self._stopping.is_set():
            self._changed.wait(LOOK_AGAIN_S)
            self._changed.clear()
            if self._stopping.is_set():
                return
            try:
                self.refresh()
            except Exception:  # a failed redraw must never take the tray down
                log.exception("updating the tray icon failed")
            self._stopping.wait(MIN_REDRAW_GAP_S)

    def run(self) -> None:
        """Show the icon; returns when `stop` is called (runs on the main thread).

        Raises:
            TrayUnavailable: the desktop's display went away under the icon (the session
                ended, or its X server stopped).
        """

        def setup(icon: Any) -> None:
            icon.visible = True
            # following first: should the listener not be added (a loop too busy to answer
            # in time), the icon still looks again every few seconds
            self._thread.start()
            self.app.add_listener(self._changed.set)
            self._changed.set()

        self.icon.run(setup=setup)
        if getattr(self.icon, "display_lost", False):
            # the icon's loop has ended and its X connection is gone: only the follow
            # thread is left to stop (stopping the icon itself would talk to the dead server)
            self._stop_following()
            raise TrayUnavailable(
                "the desktop's display went away (the session ended or its X server "
                "stopped), so Sysboy stopped and parked the needles."
            )

    def _stop_following(self) -> None:
        """End the thread that keeps the icon up to date with the app."""
        self._stopping.set()
        self._changed.set()

    def stop(self) -> None:
        """Hide the icon and end `run`."""
        self._stop_following()
        if self.popup is not None:
            self.popup.close()
        try:
            stop_icon(self.icon)
        except Exception:  # AppIndicator without a notification service raises on stop
            log.exception("stopping the tray icon failed")
