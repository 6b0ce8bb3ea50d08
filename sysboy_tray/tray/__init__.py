"""The tray icon: the gauge drawing, and the one place that picks the pystray backend."""
