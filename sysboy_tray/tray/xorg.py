"""pystray's plain X11 icon, made to hear clicks, stay docked and draw at the tray's size.

pystray's xorg icon window does not ask X for button presses, so a tray host such
as trayer never hands it a click, and it would act on the left button only. This
icon hears both and runs the menu's default item, which opens the Tk popup.

pystray also asks the tray to dock the icon again on every icon update. trayer
answers each request by embedding the window afresh: the icon shrinks to one pixel
wide until the tray lays it out again, which a metric that moves every second never
lets it do. This icon asks once, and again only when the tray itself went away.

It also renames the window at each tooltip change, which trayer answers with a GTK
critical each time; no XEmbed tray shows that name, so this icon keeps its first.

pystray runs its icon's X calls on its loop thread: from any other thread it sends that
thread an X client message, on the icon's own X connection, and waits. The loop thread
reads that connection at the same time, and python-xlib's threaded mode can then leave the
loop waiting forever for a reply (the icon stuck on its first face, about one start in 60
on a busy machine). This icon sends that message through a second connection of its own,
so only the loop thread ever uses the first.

Last, pystray stretches the image to the window (24 x 30 in a 30 px panel) and pastes
it without its alpha channel, so the edges show the colours of pixels that were meant
to be invisible. This icon draws a square image at the size of the window's shorter
side, and lays it over the tray's own background.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from PIL import Image

log = logging.getLogger(__name__)

LEFT, RIGHT = 1, 3
# while no tray takes the icon in, the dock request is sent again after this, then
# after twice as long each time, up to the last
FIRST_ASK_AGAIN_S = 2.0
LAST_ASK_AGAIN_S = 30.0
# below this the gauge is not drawn (a tray host first maps icons at 1 x 1)
MIN_SIDE = 8

# draws the icon as a square RGBA image of the given side, in pixels
Painter = Callable[[int], Image.Image]


def icon_box(width: int, height: int) -> tuple[int, int, int]:
    """Where a square icon goes in a window of this size: (left, top, side), centred."""
    side = max(1, min(width, height))
    return (width - side) // 2, (height - side) // 2, side


def over(background: Image.Image, icon: Image.Image, left: int, top: int) -> Image.Image:
    """`icon` (RGBA) laid over an RGB `background` at (left, top): what the tray shows."""
    shown = background.convert("RGBA")
    shown.alpha_composite(icon, (left, top))
    return shown.convert("RGB")


def x11_icon(icon_class: type[Any]) -> type[Any]:
    """A subclass of pystray's xorg `Icon`: clickable, docked once, drawn at the tray's size.

    Give an instance a `paint` (a `Painter`) to draw the icon at each size the tray
    asks for; without one the image given to pystray is scaled.
    """
    import Xlib.display  # type: ignore[import-untyped]
    import Xlib.error  # type: ignore[import-untyped]
    import Xlib.protocol.event  # type: ignore[import-untyped]
    import Xlib.X  # type: ignore[import-untyped]  # comes with pystray on Linux
    import Xlib.Xutil  # type: ignore[import-untyped]

    class Waker:
        """Runs an icon method on pystray's loop thread, woken through a connection of its
        own (the icon's stays the loop thread's alone)."""

        def __init__(self, icon: Any) -> None:
            self.icon = icon
            self.lock = threading.Lock()
            self.display: Any = None

        def dispatcher(self, method: Any) -> Callable[[], None]:
            """`method` run on the loop thread, from whichever thread calls the result."""
            icon = self.icon
            # the atom pystray made for this method: its loop runs the method on hearing it
            atom = icon._display.intern_atom(f"_PYSTRAY_{method.__name__.upper()}")

            def inner() -> None:
                loop = getattr(icon, "_thread", None)
                if loop is not None and loop.ident == threading.get_ident():
                    method()
                    return
                self.send(atom)
                result = icon._queue.get()  # True, or the exception the loop caught
                if result is not True:
                    raise result[1].with_traceback(result[2])

            return inner

        def send(self, atom: int) -> None:
            with self.lock:
                if self.display is None:
                    self.display = Xlib.display.Display(self.icon._display.get_display_name())
                window = self.display.create_resource_object("window", self.icon._window.id)
                message = Xlib.protocol.event.ClientMessage(
                    window=window,
                    client_type=atom,
                    data=(32, (Xlib.X.CurrentTime, 0, 0, 0, 0)),
                )
                window.send_event(message, event_mask=Xlib.X.NoEventMask)
                self.display.flush()

        def close(self) -> None:
            with self.lock:
                if self.display is not None:
                    # an X server that went away leaves nothing to close
                    with contextlib.suppress(Xlib.error.ConnectionClosedError, OSError):
                        self.display.close()
                    self.display = None

    def _rewrite_implementation(self: Any, *methods: Any) -> None:
        icon_class._rewrite_implementation(self, *methods)  # the loop's side: atoms, handlers
        self._waker = Waker(self)
        for method in methods:
            setattr(self, method.__name__, self._waker.dispatcher(method))

    def _create_window(self: Any) -> Any:
        window = icon_class._create_window(self)
        mask = window.get_attributes().your_event_mask
        # ParentRelative: clearing the window shows the tray's background beneath it
        window.change_attributes(
            event_mask=mask | Xlib.X.ButtonPressMask, background_pixmap=Xlib.X.ParentRelative
        )
        return window

    def _on_button_press(self: Any, event: Any) -> None:
        if event.detail in (LEFT, RIGHT):
            self()

    def _update_title(self: Any) -> None:
        # pystray writes the tooltip into the window's name, which no XEmbed tray shows;
        # trayer logs a GTK critical at each change, and a reading changes it every second
        pass

    def _embedded(self: Any) -> bool:
        """True once a tray has taken the window in (its parent is no longer the root)."""
        try:
            parent = self._window.query_tree().parent
        except Xlib.error.XError:
            return False
        return bool(parent.id != self._display.screen().root.id)

    def _update_icon(self: Any) -> None:
        # the one change from pystray's: no second dock request once docked
        self._docked = _embedded(self)
        if not self._docked:
            try:
                self._assert_docked()
            except AssertionError:
                log.debug("no tray to dock the icon in yet")
        self._icon_data = None
        self._draw()
        self._icon_valid = True

    def _events(self: Any) -> Any:
        # pystray's loop logs anything its event source raises as an error, with a
        # traceback; an X server that went away (the session ended) ends the loop instead,
        # and `display_lost` tells the app why its icon is gone
        try:
            yield from icon_class._events(self)
        except Xlib.error.ConnectionClosedError:
            log.warning("the X display closed the icon's connection")
            self.display_lost = True

    def _run(self: Any) -> None:
        # pystray starts the setup thread before it notes which thread runs its loop, and
        # setup's first call (showing the icon) asks which: note it first, or that call
        # can fail and the icon never shows
        self._thread = threading.current_thread()
        try:
            icon_class._run(self)
        finally:
            self._waker.close()

    def _show(self: Any) -> None:
        icon_class._show(self)
        threading.Thread(
            target=_ask_until_docked, args=(self,), name="sysboy-x11-dock", daemon=True
        ).start()

    def _ask_until_docked(self: Any) -> None:
        """Ask again now and then while no tray took the icon (one starting up may miss it)."""
        delay = FIRST_ASK_AGAIN_S
        while True:
            time.sleep(delay)
            # _docked: what the loop thread last saw (this thread makes no X calls)
            if not (self._running and self.visible) or getattr(self, "_docked", False):
                return
            log.info("no tray took the icon in yet: asking again")
            self._update_icon()  # runs on pystray's thread, which asks the tray
            delay = min(delay * 2, LAST_ASK_AGAIN_S)

    def _image(self: Any, side: int) -> Image.Image:
        paint: Painter | None = getattr(self, "paint", None)
        if paint is not None:
            return paint(side).convert("RGBA")
        given: Image.Image = self.icon
        return given.convert("RGBA").resize((side, side), Image.Resampling.LANCZOS)

    def _on_expose(self: Any, event: Any) -> None:
        if event.window.id != self._window.id:
            return
        if event.type == Xlib.X.ConfigureNotify:
            _square(self, event.width, event.height)
        self._draw()

    def _square(self: Any, width: int, height: int) -> None:
        """Ask the tray for a square as tall as its panel (pystray asks for 24 x 24)."""
        if height < MIN_SIDE or width == height or getattr(self, "_asked", None) == height:
            return
        self._asked = height
        self._window.set_wm_normal_hints(
            flags=Xlib.Xutil.PMinSize, min_width=height, min_height=height
        )

    def _draw(self: Any) -> None:
        try:
            box = self._window.get_geometry()
            width, height = box.width, box.height
            left, top, side = icon_box(width, height)
            self._window.clear_area(0, 0, width, height)
            if side < MIN_SIDE:
                return  # the tray is still laying the icon out: it sends the real size soon
            icon = _image(self, side)
            background = _background(self._window, width, height)
            self._window.put_pil_image(self._gc, 0, 0, over(background, icon, left, top))
        except Xlib.error.BadDrawable:
            pass  # the window was destroyed meanwhile

    def _background(window: Any, width: int, height: int) -> Image.Image:
        """What the tray shows behind the window (black when X cannot say)."""
        rawmode = "BGRX" if window.display.info.image_byte_order == 0 else "XRGB"
        try:
            reply = window.get_image(0, 0, width, height, Xlib.X.ZPixmap, 0xFFFFFFFF)
            return Image.frombytes("RGB", (width, height), reply.data, "raw", rawmode)
        except (Xlib.error.XError, ValueError) as exc:  # not viewable yet, or another depth
            log.debug("cannot read the tray's background: %s", exc)
            return Image.new("RGB", (width, height))

    return type(
        "X11Icon",
        (icon_class,),
        {
            "_create_window": _create_window,
            "_rewrite_implementation": _rewrite_implementation,
            "_on_button_press": _on_button_press,
            "_update_icon": _update_icon,
            "_update_title": _update_title,
            "_events": _events,
            "_run": _run,
            "_show": _show,
            "display_lost": False,
            "_on_expose": _on_expose,
            "_draw": _draw,
        },
    )
