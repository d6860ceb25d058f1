"""A cost model of the accelerator behind a TF Serving server (``--emulate_device_latency``).

The emulator computes on the CPU in microseconds, so a benchmark against it shows
none of the latency shape of a GPU server. :class:`DeviceModel` adds that shape:
the device runs one batch at a time, and a batch of ``rows`` rows occupies it for
``fixed_ms + per_row_ms * rows`` milliseconds. Under load, calls queue for the
device, so latency grows with concurrency and batching pays off as it does on a
GPU (one fixed cost shared by many rows).

This is a model, not a measurement: no real device is timed, the two numbers are
whatever you choose, and effects a real accelerator has (kernel concurrency,
memory transfers, warm-up, thermal limits) are not represented.

>>> DeviceModel.parse("2.5,0.1").cost_seconds(10)
0.0035
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field

__all__ = ["DeviceModel"]


@dataclass
class DeviceModel:
    """A serial device: each batch costs ``fixed_ms`` plus ``per_row_ms`` per row.

    Args:
        fixed_ms: cost of launching one batch (milliseconds, >= 0).
        per_row_ms: cost of each row of the batch (milliseconds, >= 0).
    """

    fixed_ms: float
    per_row_ms: float
    _busy: asyncio.Lock | None = field(default=None, init=False, repr=False)
    batches: int = field(default=0, init=False)
    """How many batches the device has run."""
    rows: int = field(default=0, init=False)
    """How many rows (padding included) the device has run."""

    def __post_init__(self) -> None:
        for name, value in (("fixed_ms", self.fixed_ms), ("per_row_ms", self.per_row_ms)):
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"--emulate_device_latency {name} must be >= 0, got {value}")

    @classmethod
    def parse(cls, text: str) -> DeviceModel:
        """``"FIXED_MS,PER_ROW_MS"`` (the flag's value) as a model."""
        parts = [part.strip() for part in text.split(",")]
        if len(parts) != 2:
            raise ValueError(
                f"--emulate_device_latency expects FIXED_MS,PER_ROW_MS (e.g. 2,0.05), got {text!r}"
            )
        try:
            fixed, per_row = float(parts[0]), float(parts[1])
        except ValueError:
            raise ValueError(
                f"--emulate_device_latency expects two numbers FIXED_MS,PER_ROW_MS, got {text!r}"
            ) from None
        return cls(fixed, per_row)

    def cost_seconds(self, rows: int) -> float:
        """How long a batch of ``rows`` rows occupies the device."""
        return (self.fixed_ms + self.per_row_ms * rows) / 1000.0

    async def run(self, rows: int) -> None:
        """Occupy the device for one batch of ``rows`` rows (waiting for it to be free)."""
        if self._busy is None:
            self._busy = asyncio.Lock()
        async with self._busy:
            self.batches += 1
            self.rows += rows
            # The modelled execution time itself, not synchronisation.
            await asyncio.sleep(self.cost_seconds(rows))
