"""Sysboy2000: live PC data on an analog panel meter driven by an ESP32."""

__version__ = "0.1.0"
PROTOCOL_VERSION = 2
SERVICE_TYPE = "_sysboy._tcp.local."
DEVICE_PATH = "/device"
CONTROL_PATH = "/control"
DEFAULT_PORT = 47800

__all__ = [
    "CONTROL_PATH",
    "DEFAULT_PORT",
    "DEVICE_PATH",
    "PROTOCOL_VERSION",
    "SERVICE_TYPE",
    "__version__",
]
