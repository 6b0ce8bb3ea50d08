"""The simulator's window: a thin Tk view that paints `meter_face` and forwards the button."""

from __future__ import annotations

import importlib.util
import queue
import sys
import time
import tkinter as tk
from types import ModuleType

from sysboy_tray.firmware_tool import firmware_dir
from sysboy_tray.simulator import face
from sysboy_tray.simulator.device import (
    Console,
    Metric,
    Needle,
    SimulatedDevice,
    State,
    Stopped,
)

TICK_MS = 20  # the firmware's needle runs at 50 Hz
FONT = "Helvetica"


def firmware_led() -> ModuleType:
    """The firmware's own `led` module, so the window blinks with the device's timings."""
    spec = importlib.util.spec_from_file_location("sysboy_firmware_led", firmware_dir() / "led.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class MeterWindow:
    """One simulator's meter faces, one per needle side by side, with a push button under."""

    def __init__(self, root: tk.Tk, device: SimulatedDevice) -> None:
        self.root = root
        self.device = device
        self.led = firmware_led()
        count = device.needle_count
        self.fractions = [0.0] * count
        self.labels = [""] * count
        self.pattern = ""
        self.pattern_since = time.monotonic()
        self.exit_status = 0
        self._painted: list[tuple[float, str, str, bool] | None] = [None] * count
        root.title(f"Sysboy simulator – {device.name}")
        root.resizable(False, False)
        root.configure(background=face.BEZEL)
        faces = tk.Frame(root, background=face.BEZEL)
        faces.pack()
        self.canvases = [
            tk.Canvas(faces, width=face.WIDTH, height=face.HEIGHT, highlightthickness=0, bd=0)
            for _ in range(count)
        ]
        for canvas in self.canvases:
            canvas.pack(side="left")
        bar = tk.Frame(root, background=face.BEZEL)
        bar.pack(fill="x")
        button = tk.Button(
            bar,
            text="Button",
            width=8,
            relief="flat",
            bg="#3a3f47",
            fg=face.BAND_TEXT,
            activebackground="#4a505a",
            activeforeground="#ffffff",
            highlightthickness=0,
        )
        button.bind("<ButtonPress-1>", lambda _e: device.press(True))
        button.bind("<ButtonRelease-1>", lambda _e: device.press(False))
        button.pack(side="left", padx=14, pady=(0, 12))
        tk.Label(
            bar, text=f"{device.name} · id {device.id}", bg=face.BEZEL, fg=face.FAINT_INK
        ).pack(side="right", padx=14, pady=(0, 12))
        root.protocol("WM_DELETE_WINDOW", self.close)
        self._paint()
        root.after(TICK_MS, self._tick)

    def close(self) -> None:
        """Close the window; the caller then stops the firmware."""
        self.root.destroy()

    def lit(self) -> bool:
        """Whether the LED is on now, in its pattern's blinking."""
        if self.pattern not in self.led.PATTERNS:
            return False
        elapsed_ms = int((time.monotonic() - self.pattern_since) * 1000)
        return bool(self.led.level_at(self.pattern, elapsed_ms))

    def _tick(self) -> None:
        while True:
            try:
                event = self.device.events.get_nowait()
            except queue.Empty:
                break
            self.take(event)
        self._paint()
        self.root.after(TICK_MS, self._tick)

    def take(self, event: object) -> None:
        """Apply one event from the firmware."""
        if isinstance(event, Needle):
            if event.number <= len(self.fractions):
                self.fractions[event.number - 1] = event.fraction
        elif isinstance(event, State):
            self.pattern, self.pattern_since = event.pattern, time.monotonic()
        elif isinstance(event, Metric):
            if event.number <= len(self.labels):
                self.labels[event.number - 1] = event.label
        elif isinstance(event, Console):
            print(event.text, file=sys.stderr, flush=True)
        elif isinstance(event, Stopped):
            self.pattern = "stopped"
            self.exit_status = 1
            print(f"sysboy: the firmware stopped (exit status {event.code})", file=sys.stderr)

    def _paint(self) -> None:
        lit = self.lit()
        for index, canvas in enumerate(self.canvases):
            wanted = (self.fractions[index], self.labels[index], self.pattern, lit)
            if wanted == self._painted[index]:
                continue
            self._painted[index] = wanted
            canvas.delete("all")
            for shape in face.meter_face(*wanted):
                paint(canvas, shape)


def paint(canvas: tk.Canvas, shape: face.Shape) -> None:
    """Draw one shape of the face on `canvas`."""
    if isinstance(shape, face.Line):
        flat = [c for point in shape.points for c in point]
        canvas.create_line(*flat, fill=shape.colour, width=shape.width, capstyle="round")
    elif isinstance(shape, face.Polygon):
        canvas.create_polygon(*[c for p in shape.points for c in p], fill=shape.fill)
    elif isinstance(shape, face.Rect):
        canvas.create_rectangle(
            *shape.box, fill=shape.fill, outline=shape.outline, width=shape.width
        )
    elif isinstance(shape, face.Oval):
        canvas.create_oval(*shape.box, fill=shape.fill, outline=shape.outline, width=shape.width)
    else:
        font = (FONT, -round(shape.size * 1.33), "bold" if shape.bold else "normal")
        canvas.create_text(
            *shape.at, text=shape.text, fill=shape.colour, font=font, anchor=shape.anchor
        )
