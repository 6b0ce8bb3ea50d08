"""Every error Sysboy raises on purpose.

SysboyError
├── ProtocolError      a message that breaks protocol v2 (bad JSON, wrong type, ...)
├── ConfigError        a settings value that cannot be used
├── MetricUnavailable  a metric that cannot be read now (reason in words)
├── ControlError       the local control API refused or failed a request
│   └── NotRunning     no running Sysboy app to talk to
├── TransportError     the network link failed (not the content of a message)
│   └── CannotListen   the port asked for is taken or not allowed
└── TrayUnavailable    no tray icon can be shown here (no graphical session, ...)
"""


class SysboyError(Exception):
    """Base of every error raised on purpose by Sysboy."""


class ProtocolError(SysboyError):
    """A message that breaks protocol v2; the text says what is wrong."""


class ConfigError(SysboyError):
    """A settings value that cannot be used."""


class MetricUnavailable(SysboyError):
    """A metric that cannot be read now; the text is the reason in words."""


class ControlError(SysboyError):
    """The local control API refused or failed a request."""


class NotRunning(ControlError):
    """There is no running Sysboy app to talk to."""


class TransportError(SysboyError):
    """The network link failed."""


class CannotListen(TransportError):
    """The server cannot listen on the port asked for; the text names it and says why."""


class TrayUnavailable(SysboyError):
    """No tray icon can be shown here; the text says why and suggests `sysboy serve`."""
