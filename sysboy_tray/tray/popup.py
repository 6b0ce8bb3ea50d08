"""The tray menu as a Tk popup, for tray toolkits that have no menu (plain X11).

Tk is only ever touched from one thread: each popup gets its own short-lived thread
that makes a hidden Tk root, shows the menu at the pointer, waits until the menu is
closed and destroys the root. The chosen item runs after that, with Tk gone, so an
action may take its time or stop the tray icon. No thread runs while no popup is open.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import tkinter

log = logging.getLogger(__name__)

# while a popup is open, how often it looks whether it was closed or the tray is closing
WATCH_MS = 100
# how long closing the tray waits for an open popup to go
CLOSE_WAIT_S = 2.0
# Tk lets a submenu overlap its menu's border by a few pixels: that is not covering it
TK_CASCADE_OVERLAP_PX = 8

Choose = Callable[[Any], None]


def fill(
    target: tkinter.Menu,
    model: Any,
    choose: Choose,
    keep: list[tkinter.Variable],
    placer: CascadePlacer | None = None,
) -> None:
    """Add the visible items of the pystray menu `model` to the Tk menu `target`.

    Choosing an entry calls `choose(item)` with its pystray item; the Tk variables
    that show checked items go into `keep`, which must live as long as the menu.
    """
    import tkinter

    placer = placer or CascadePlacer()
    group = tkinter.StringVar(target, value="")  # the radio items of one menu level
    keep.append(group)
    for index, item in enumerate(model):  # pystray yields the visible items only
        if item is type(model).SEPARATOR:
            target.add_separator()
            continue
        state: Literal["normal", "disabled"] = "normal" if item.enabled else "disabled"
        submenu = item.submenu
        if submenu is not None:
            cascade = tkinter.Menu(target, tearoff=False)
            fill(cascade, submenu, choose, keep, placer)
            cascade.bind("<Map>", placer.mapped, add=True)
            target.add_cascade(label=item.text, menu=cascade, state=state)
            continue
        command = _chooser(choose, item)
        checked = item.checked
        if checked is None:
            target.add_command(label=item.text, command=command, state=state)
        elif item.radio:
            value = str(index)
            if checked:
                group.set(value)
            target.add_radiobutton(
                label=item.text, command=command, state=state, variable=group, value=value
            )
        else:
            mark = tkinter.IntVar(target, value=int(bool(checked)))
            keep.append(mark)
            target.add_checkbutton(label=item.text, command=command, state=state, variable=mark)


class CascadePlacer:
    """Keeps each submenu beside the menu it opens from, never over it.

    At the screen's right edge Tk slides a submenu left until it fits, over its own
    menu: the entries of both are hidden. A submenu that would cover its menu goes to
    its left instead, and the submenus opened from it go on leftwards.
    """

    def __init__(self) -> None:
        self._leftward: set[str] = set()

    def mapped(self, event: tkinter.Event[tkinter.Menu]) -> None:
        menu = event.widget
        menu.after_idle(self.place, menu)

    def place(self, menu: tkinter.Menu) -> None:
        """Move `menu` (a shown submenu) to the left of its menu if it covers it."""
        parent = menu.master
        if not isinstance(parent, type(menu)) or not menu.winfo_ismapped():
            return
        x, y, width = menu.winfo_rootx(), menu.winfo_rooty(), menu.winfo_reqwidth()
        px, pwidth = parent.winfo_rootx(), parent.winfo_width()
        covered = min(x + width, px + pwidth) - max(x, px)
        if covered <= TK_CASCADE_OVERLAP_PX and str(parent) not in self._leftward:
            self._leftward.discard(str(menu))
            return
        left, right = px - width, px + pwidth
        if left >= 0:
            self._leftward.add(str(menu))
            target = left
        elif right + width <= menu.winfo_screenwidth():
            self._leftward.discard(str(menu))  # no room on the left: beside it on the right
            target = right
        else:
            return  # room on neither side: Tk's place, on screen, is the best left
        if target != x:
            menu.tk.call("wm", "geometry", str(menu), f"+{target}+{y}")


def _chooser(choose: Choose, item: Any) -> Callable[[], None]:
    # a function of its own, so each entry keeps its own item (not the loop's last)
    return lambda: choose(item)


class Popup:
    """Shows a pystray menu as a Tk popup at the pointer, one popup at a time."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self._warned = False

    def opener(self, Menu: type[Any], MenuItem: type[Any]) -> Any:
        """A pystray menu whose one hidden default item, run by a click, opens the popup."""
        return Menu(
            MenuItem("Menu", lambda icon, item: self.open(icon), default=True, visible=False)
        )

    def open(self, icon: Any) -> None:
        """Show the popup from its own thread and return at once; no-op while one is open."""
        with self._lock:
            if self._thread is not None or self._closing.is_set():
                return
            self._thread = threading.Thread(
                target=self._run, args=(icon,), name="sysboy-popup", daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        """Take down any open popup and open no more (from any thread)."""
        self._closing.set()
        with self._lock:
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(CLOSE_WAIT_S)

    @property
    def is_open(self) -> bool:
        """True from a click until the popup is gone (before the chosen item runs)."""
        with self._lock:
            return self._thread is not None

    def _run(self, icon: Any) -> None:
        try:
            chosen = self._show()
        except Exception:  # a broken popup must never take the tray down
            log.exception("the tray menu failed")
            chosen = None
        finally:
            with self._lock:
                self._thread = None
        if chosen is None or self._closing.is_set():
            return
        try:
            chosen(icon)
        except Exception:
            log.exception("the menu item %r failed", chosen.text)

    def _show(self) -> Any | None:
        """Show the menu until it closes; the item chosen, if any (Tk lives only in here)."""
        try:
            import tkinter
        except ImportError as exc:
            self._no_tk(exc)
            return None
        try:
            root = tkinter.Tk(className="sysboy")
        except tkinter.TclError as exc:
            self._no_tk(exc)
            return None
        chosen: list[Any] = []
        keep: list[tkinter.Variable] = []
        try:
            root.withdraw()
            menu = tkinter.Menu(root, tearoff=False)
            fill(menu, self.model, chosen.append, keep)
            watch = _Watch(root, menu, self._closing)
            menu.bind("<Unmap>", watch.unmapped)
            x, y = root.winfo_pointerxy()
            menu.tk_popup(x, y)
            root.after(WATCH_MS, watch.check)
            root.mainloop()
        except tkinter.TclError as exc:
            log.warning("the tray menu could not be shown: %s", exc)
        finally:
            root.destroy()
            del keep[:], root
            # Tk objects must die on the thread that made them, not in a later
            # garbage collection on some other thread.
            gc.collect()
        return chosen[-1] if chosen else None

    def _no_tk(self, exc: BaseException) -> None:
        if not self._warned:
            self._warned = True
            log.warning("the tray menu needs Tk, which cannot start here: %s", exc)
        else:
            log.debug("no Tk for the tray menu: %s", exc)


class _Watch:
    """Ends the popup's Tk loop once the menu is closed, or the tray is closing."""

    def __init__(self, root: tkinter.Tk, menu: tkinter.Menu, closing: threading.Event) -> None:
        self.root = root
        self.menu = menu
        self.closing = closing

    def unmapped(self, event: tkinter.Event[tkinter.Menu]) -> None:
        if event.widget is self.menu:
            self.root.quit()

    def check(self) -> None:
        if self.closing.is_set() or not self.menu.winfo_ismapped():
            self.root.quit()
        else:
            self.root.after(WATCH_MS, self.check)
