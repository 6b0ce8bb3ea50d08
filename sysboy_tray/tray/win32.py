"""pystray's Windows icon, made to open its menu on a left click and drawn at the size asked.

pystray's win32 icon runs the default menu item on a left click and loads its image
with LR_DEFAULTSIZE, which is the large icon size (32 px at 100 %), for the shell to
scale down blurrily. This icon opens the menu on either button and loads the image at
the small-icon size Windows reports (SM_CXSMICON, scaled for the display's DPI once
the process is DPI-aware).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from typing import Any

log = logging.getLogger(__name__)

WM_LBUTTONUP = 0x0202
WM_RBUTTONUP = 0x0205
SM_CXSMICON = 49
IMAGE_ICON = 1
LR_LOADFROMFILE = 0x0010
DEFAULT_SMALL_ICON = 16


def small_icon_size() -> int:
    """The notification area's icon size in pixels: 16 at 100 %, 24 at 150 %, 32 at 200 %."""
    if sys.platform != "win32":  # also tells the type checker which API follows
        return DEFAULT_SMALL_ICON
    import ctypes

    user32 = ctypes.WinDLL("user32", use_last_error=True)
    user32.GetSystemMetrics.argtypes = [ctypes.c_int]
    user32.GetSystemMetrics.restype = ctypes.c_int
    size = int(user32.GetSystemMetrics(SM_CXSMICON))
    return size if size > 0 else DEFAULT_SMALL_ICON


def sized_icon(icon_class: type[Any], size: int) -> type[Any]:
    """A subclass of pystray's win32 `Icon`: menu on a left click, image loaded at `size`."""

    def _on_notify(self: Any, wparam: Any, lparam: Any) -> Any:
        # the left button does what the right one does: the user meets the menu either way
        if lparam == WM_LBUTTONUP:
            lparam = WM_RBUTTONUP
        return icon_class._on_notify(self, wparam, lparam)

    def _assert_icon_handle(self: Any) -> None:
        if self._icon_handle:
            return
        from pystray._util import win32  # type: ignore[import-not-found,unused-ignore]

        fd, path = tempfile.mkstemp(".ico")
        try:
            with os.fdopen(fd, "wb") as out:
                self.icon.save(out, format="ICO", sizes=[(size, size)])
            self._icon_handle = win32.LoadImage(None, path, IMAGE_ICON, size, size, LR_LOADFROMFILE)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)

    return type(
        "SizedIcon",
        (icon_class,),
        {"_on_notify": _on_notify, "_assert_icon_handle": _assert_icon_handle},
    )
