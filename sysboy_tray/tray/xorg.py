"""pystray's plain X11 icon, made to hear left and right clicks.

pystray's xorg icon window does not ask X for button presses, so a tray host such
as trayer never hands it a click, and it would act on the left button only. This
icon hears both and runs the menu's default item, which opens the Tk popup.
"""

from __future__ import annotations

from typing import Any

LEFT, RIGHT = 1, 3


def clickable(icon_class: type[Any]) -> type[Any]:
    """A subclass of pystray's xorg `Icon` that runs its menu's default item on a click."""
    import Xlib.X  # type: ignore[import-untyped]  # comes with pystray on Linux

    def _create_window(self: Any) -> Any:
        window = icon_class._create_window(self)
        mask = window.get_attributes().your_event_mask
        window.change_attributes(event_mask=mask | Xlib.X.ButtonPressMask)
        return window

    def _on_button_press(self: Any, event: Any) -> None:
        if event.detail in (LEFT, RIGHT):
            self()

    return type(
        "ClickableIcon",
        (icon_class,),
        {"_create_window": _create_window, "_on_button_press": _on_button_press},
    )
