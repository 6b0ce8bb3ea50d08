"""Metric sources: what the needle can show, and the one place that picks them.

Every source has the same small API (`MetricSource`). `read()` may block (NVML,
sysfs, psutil) and so is only ever called from the sampler thread, never from
the event loop. It never raises: a failed read returns an unavailable
`Reading` whose `reason` a user understands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Reading:
    """One read of one metric: needle percent, or None with the reason why not."""

    metric: str
    percent: float | None
    raw: float | None = None
    unit: str = "%"
    detail: str | None = None
    reason: str | None = None

    @property
    def available(self) -> bool:
        return self.percent is not None

    @classmethod
    def unavailable(cls, metric: str, reason: str) -> Reading:
        return cls(metric, None, reason=reason)


class MetricSource(Protocol):
    """A metric the needle can show."""

    id: str
    label: str
    unit: str

    def read(self) -> Reading:
        """Read the metric now (may block; never raises)."""
        ...

    def close(self) -> None:
        """Release what the source holds (NVML handle, files)."""
        ...
