"""The calibration window: a thin Tk view over `CalibrationEditor`.

Talking to the app can take seconds (a save waits for the device's ack), so Save,
Cancel and Sweep run on a worker thread while the window stays responsive; slider
moves are quick loopback round trips and run on the Tk thread, paced by the editor.

With SYSBOY_CALIBRATE_PROBE set to a file path, the window writes its state and the
screen position of its controls there after every change, so a test can drive the
real window with the X pointer.
"""

from __future__ import annotations

import json
import os
import threading
import tkinter as tk
from collections.abc import Callable
from pathlib import Path
from tkinter import ttk
from typing import Any

from sysboy_tray.calibrate.editor import FULL, PERCENTS, CalibrationEditor
from sysboy_tray.config import atomic_write
from sysboy_tray.errors import ControlError

TICK_MS = 25
PROBE_ENV = "SYSBOY_CALIBRATE_PROBE"
ERROR_COLOUR = "#b00020"
OK_COLOUR = "#1b5e20"


class CalibrationWindow:
    """Five sliders with fine steps, and Sweep / Reset to linear / Cancel / Save to device."""

    def __init__(self, root: tk.Tk, editor: CalibrationEditor) -> None:
        self.root = root
        self.editor = editor
        self.exit_status = 0
        self._busy = False
        self._closing = False
        self._setting = False  # ttk.Scale.set() fires the command too: not a user move
        self._probe = Path(os.environ[PROBE_ENV]) if os.environ.get(PROBE_ENV) else None
        self._probed = b""
        self.scales: list[ttk.Scale] = []
        self.values: list[ttk.Label] = []
        self.steps: list[tuple[ttk.Button, ttk.Button]] = []
        self.pickers: list[ttk.Radiobutton] = []  # one per needle, on a meter with several
        self.chosen = tk.IntVar(value=editor.needle)
        self.status = tk.StringVar(value="Move a slider: the needle follows it.")
        self._build()
        root.protocol("WM_DELETE_WINDOW", self.on_cancel)
        root.after(TICK_MS, self._tick)

    # -- building -------------------------------------------------------------------------

    def _build(self) -> None:
        device = self.editor.device
        self._set_title()
        self.root.resizable(False, False)
        style = ttk.Style(self.root)
        if "clam" in style.theme_names() and style.theme_use() == "default":
            style.theme_use("clam")  # X11's default theme looks dated; Windows keeps its own
        frame = ttk.Frame(self.root, padding=16)
        frame.grid(sticky="nsew")
        title = ttk.Label(frame, text=device.name, font=("TkDefaultFont", 13, "bold"))
        title.grid(row=0, column=0, columnspan=3, sticky="w")
        if device.needles > 1:
            picker = ttk.Frame(frame)
            picker.grid(row=0, column=2, columnspan=3, rowspan=2, sticky="e")
            for number in range(1, device.needles + 1):
                button = ttk.Radiobutton(
                    picker,
                    text=f"Needle {number}",
                    value=number,
                    variable=self.chosen,
                    command=self.on_pick,
                )
                button.grid(row=0, column=number, padx=(6, 0))
                self.pickers.append(button)
        where = (
            device.address
            if device.name == device.device
            else f"{device.device} · {device.address}"
        )
        ttk.Label(frame, text=where, foreground="#555").grid(
            row=1, column=0, columnspan=5, sticky="w"
        )
        hint = (
            "Move each slider until the needle sits exactly on that mark of the scale.\n"
            "− and + nudge it by one thousandth. Save to device when all five are right."
        )
        ttk.Label(frame, text=hint, justify="left").grid(
            row=2, column=0, columnspan=5, sticky="w", pady=(10, 8)
        )
        ttk.Label(frame, text="scale", foreground="#555").grid(
            row=3, column=0, sticky="e", padx=(0, 8)
        )
        ttk.Label(frame, text="output", foreground="#555").grid(row=3, column=4, sticky="e")
        for index, percent in enumerate(PERCENTS):
            row = 4 + index
            ttk.Label(frame, text=f"{percent:g} %", width=6, anchor="e").grid(
                row=row, column=0, padx=(0, 8), pady=3
            )
            minus = ttk.Button(frame, text="−", width=2, command=self._stepper(index, -1))
            minus.grid(row=row, column=1)
            scale = ttk.Scale(
                frame, from_=0, to=FULL, orient="horizontal", length=320, command=self._mover(index)
            )
            scale.grid(row=row, column=2, padx=6)
            plus = ttk.Button(frame, text="+", width=2, command=self._stepper(index, 1))
            plus.grid(row=row, column=3)
            value = ttk.Label(frame, width=7, anchor="e", font=("TkFixedFont", 10))
            value.grid(row=row, column=4, padx=(8, 0))
            self.scales.append(scale)
            self.values.append(value)
            self.steps.append((minus, plus))
        buttons = ttk.Frame(frame)
        buttons.grid(row=10, column=0, columnspan=5, sticky="ew", pady=(14, 0))
        buttons.columnconfigure(2, weight=1)
        self.sweep_button = ttk.Button(buttons, text="Sweep", command=self.on_sweep)
        self.sweep_button.grid(row=0, column=0, padx=(0, 6))
        self.reset_button = ttk.Button(buttons, text="Reset to linear", command=self.on_reset)
        self.reset_button.grid(row=0, column=1)
        self.cancel_button = ttk.Button(buttons, text="Cancel", command=self.on_cancel)
        self.cancel_button.grid(row=0, column=3, padx=(0, 6))
        self.save_button = ttk.Button(buttons, text="Save to device", command=self.on_save)
        self.save_button.grid(row=0, column=4)
        self.status_label = ttk.Label(frame, textvariable=self.status, wraplength=520)
        self.status_label.grid(row=11, column=0, columnspan=5, sticky="w", pady=(10, 0))
        self._show_marks()

    def _set_title(self) -> None:
        device = self.editor.device
        which = f" {device.needle}" if device.needles > 1 else ""
        self.root.title(f"Calibrate needle{which} – {device.name}")

    def _mover(self, index: int) -> Callable[[str], None]:
        return lambda text: self.on_move(index, float(text))

    def _stepper(self, index: int, steps: int) -> Callable[[], None]:
        return lambda: self.on_step(index, steps)

    # -- showing --------------------------------------------------------------------------

    def _show_marks(self) -> None:
        self._setting = True
        try:
            for scale, label, mark in zip(self.scales, self.values, self.editor.marks, strict=True):
                scale.set(mark)
                label.configure(text=f"{mark / FULL:.3f}")
        finally:
            self._setting = False
        self._write_probe()

    def _say(self, text: str, colour: str = "") -> None:
        self.status.set(text)
        self.status_label.configure(foreground=colour)
        self._write_probe()

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        state = ["disabled"] if busy else ["!disabled"]
        widgets: list[ttk.Widget] = [*self.scales, self.sweep_button, self.reset_button]
        widgets += self.pickers
        widgets += [self.save_button, self.cancel_button]
        for minus, plus in self.steps:
            widgets += [minus, plus]
        for widget in widgets:
            widget.state(state)
        self._write_probe()

    # -- the user's actions ---------------------------------------------------------------

    def on_move(self, index: int, mark: float) -> None:
        if self._setting or self._busy:
            return
        self._guard(lambda: self.editor.move(index, mark))
        self._show_marks()

    def on_step(self, index: int, steps: int) -> None:
        if not self._busy:
            self._guard(lambda: self.editor.step(index, steps))
            self._show_marks()

    def on_reset(self) -> None:
        if not self._busy:
            self._guard(self.editor.reset_linear)
            self._show_marks()
            self._say("Reset to a straight line; Save to device keeps it.")

    def on_pick(self) -> None:
        """Another needle chosen: the one left goes back to its saved calibration."""
        needle = self.chosen.get()
        if self._busy or needle == self.editor.needle:
            self.chosen.set(self.editor.needle)
            return

        def switched() -> None:
            self._set_title()
            self._show_marks()

        self._in_background(
            lambda: self.editor.switch(needle),
            f"Switching to needle {needle}…",
            f"Needle {needle}: move a slider, the needle follows it.",
            then=switched,
        )

    def on_sweep(self) -> None:
        self._in_background(self.editor.sweep, "Sweeping…", "The needle sweeps the scale.")

    def on_save(self) -> None:
        self._in_background(
            self.editor.save,
            "Saving to the device…",
            "Saved to the device, with a copy on this PC.",
        )

    def on_cancel(self) -> None:
        """Cancel (and closing the window): put back the saved calibration, end raw mode."""
        if self._closing:  # the device could not be told: a second Cancel just closes
            self.root.destroy()
            return
        if self._busy:
            return
        self._closing = True
        self._in_background(self.editor.cancel, "Putting back the saved calibration…", None)

    # -- plumbing -------------------------------------------------------------------------

    def _guard(self, action: Callable[[], Any]) -> None:
        try:
            action()
        except ControlError as exc:
            text = str(exc)
            self._say(text[:1].upper() + text[1:], ERROR_COLOUR)

    def _tick(self) -> None:
        if not self._busy:
            self._guard(self.editor.tick)
        # ttk lays the sliders out when it draws them, after the first map: keep looking
        self._write_probe()
        self.root.after(TICK_MS, self._tick)

    def _in_background(
        self,
        action: Callable[[], None],
        doing: str,
        done: str | None,
        then: Callable[[], None] | None = None,
    ) -> None:
        if self._busy:
            return
        self._set_busy(True)
        self._say(doing)
        outcome: list[BaseException | None] = []

        def work() -> None:
            try:
                action()
                outcome.append(None)
            except Exception as exc:
                outcome.append(exc)

        threading.Thread(target=work, name="sysboy-calibrate", daemon=True).start()
        self.root.after(TICK_MS, self._wait_for, outcome, done, then)

    def _wait_for(
        self,
        outcome: list[BaseException | None],
        done: str | None,
        then: Callable[[], None] | None,
    ) -> None:
        if not outcome:
            self.root.after(TICK_MS, self._wait_for, outcome, done, then)
            return
        self._set_busy(False)
        # the needle the editor works on now, whether a switch went through or not
        self.chosen.set(self.editor.needle)
        error = outcome[0]
        if error is None and self._closing:
            self.root.destroy()
        elif error is None:
            if then is not None:
                then()
            self._say(done or "", OK_COLOUR)
        else:
            text = str(error)
            self._say(text[:1].upper() + text[1:], ERROR_COLOUR)
            if self._closing:
                self.exit_status = 1
                self.cancel_button.configure(text="Close")

    def _write_probe(self) -> None:
        if self._probe is None:
            return

        def box(widget: tk.Misc) -> list[int]:
            x, y = widget.winfo_rootx(), widget.winfo_rooty()
            return [x, y, widget.winfo_width(), widget.winfo_height()]

        sliders = []
        for scale in self.scales:
            x0, y0 = scale.coords(0)
            x1, _ = scale.coords(FULL)
            sliders.append(
                {
                    "x0": scale.winfo_rootx() + x0,
                    "x1": scale.winfo_rootx() + x1,
                    "y": scale.winfo_rooty() + y0,
                }
            )
        state = {
            "needle": self.editor.needle,
            "marks": self.editor.marks,
            "saved": [list(p) for p in self.editor.saved],
            "status": self.status.get(),
            "busy": self._busy,
            "cancel": str(self.cancel_button.cget("text")),  # Close once Cancel has failed
            "mapped": bool(self.root.winfo_viewable()),
            "window": box(self.root),
            "sliders": sliders,
            "buttons": {
                "sweep": box(self.sweep_button),
                "reset": box(self.reset_button),
                "cancel": box(self.cancel_button),
                "save": box(self.save_button),
                "minus": [box(m) for m, _ in self.steps],
                "plus": [box(p) for _, p in self.steps],
                "needles": [box(b) for b in self.pickers],
            },
        }
        data = json.dumps(state).encode("utf-8")
        if data != self._probed:
            atomic_write(self._probe, data)
            self._probed = data


def show_error(message: str) -> None:
    """A small window with the error, for a user who started this from the tray (no terminal).

    Raises:
        tk.TclError: no display to show it on.
    """
    root = tk.Tk(className="sysboy")
    root.title("Calibrate needle")
    frame = ttk.Frame(root, padding=16)
    frame.grid()
    ttk.Label(frame, text=message, wraplength=420, foreground=ERROR_COLOUR).grid(pady=(0, 12))
    ttk.Button(frame, text="Close", command=root.destroy).grid(sticky="e")
    root.mainloop()


def run_window(editor: CalibrationEditor) -> int:
    """Show the window until it closes; return the exit status.

    Raises:
        tk.TclError: no display to show it on.
    """
    root = tk.Tk(className="sysboy")
    window = CalibrationWindow(root, editor)
    root.mainloop()
    return window.exit_status
