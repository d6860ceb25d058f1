"""What a benchmark run sweeps: payloads, concurrency levels, repeats and durations."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from tfs_async.bench.payloads import DEFAULT_PAYLOADS

__all__ = ["FULL", "QUICK", "SweepPlan"]


@dataclass(frozen=True)
class SweepPlan:
    """The sweep: every payload at every concurrency level, closed loop, ``repeats`` times.

    A level is skipped (and the report says so) where ``level * payload size``
    would exceed ``in_flight_budget_bytes``: 256 concurrent 38 MB tensors would
    measure the machine's swap, not the protocols. Level 1 always runs.
    """

    payloads: tuple[str, ...] = DEFAULT_PAYLOADS
    concurrency: tuple[int, ...] = (1, 16, 64, 256)
    repeats: int = 3
    warmup_s: float = 0.5
    duration_s: float = 2.0
    max_requests: int | None = None
    in_flight_budget_bytes: int = 512 << 20
    #: open loop at this fraction of the slower SDK protocol's closed-loop capacity
    open_loop: bool = True
    open_loop_load: float = 0.5
    open_loop_duration_s: float = 2.0
    open_loop_max_payload_bytes: int = 1 << 20
    codec_budget_s: float = 0.3
    #: skip a cell whose estimated time (probe request x concurrency x 2 rounds) exceeds this
    max_cell_s: float = 120.0
    #: where no cell fits, the SDK client (not its variants) still gets its probe as a
    #: one-request cell (both protocols on every payload), unless twice its estimated
    #: time exceeds this
    max_one_request_s: float = 480.0

    def __post_init__(self) -> None:
        if self.repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {self.repeats}")
        if not self.concurrency or min(self.concurrency) < 1:
            raise ValueError(f"concurrency levels must be >= 1, got {self.concurrency}")
        if self.duration_s <= 0 or self.warmup_s < 0:
            raise ValueError("duration_s must be > 0 and warmup_s >= 0")
        if not 0 < self.open_loop_load <= 1.5:
            raise ValueError(f"open_loop_load must be in (0, 1.5], got {self.open_loop_load}")

    def levels_for(self, payload_bytes: int) -> tuple[list[int], list[int]]:
        """(levels to run, levels skipped for memory) for a payload of ``payload_bytes``.

        >>> SweepPlan(in_flight_budget_bytes=1000).levels_for(100)
        ([1], [16, 64, 256])
        >>> SweepPlan().levels_for(40)
        ([1, 16, 64, 256], [])
        """
        run, skipped = [], []
        for level in sorted(set(self.concurrency)):
            if level == 1 or level * payload_bytes <= self.in_flight_budget_bytes:
                run.append(level)
            else:
                skipped.append(level)
        return run, skipped

    def fits_time(self, probe_s: float, level: int) -> bool:
        """Whether a cell at ``level`` fits ``max_cell_s``, given one request took ``probe_s``.

        >>> SweepPlan(max_cell_s=10).fits_time(0.2, 16), SweepPlan(max_cell_s=10).fits_time(0.5, 16)
        (True, False)
        """
        return probe_s * level * 2 <= self.max_cell_s

    def with_overrides(self, **changes: Any) -> SweepPlan:
        """A copy with the given fields changed (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def as_dict(self) -> dict[str, Any]:
        """The plan as a JSON-ready dict."""
        return asdict(self)


#: the full sweep (``tfs-async bench``)
FULL = SweepPlan()

#: ``tfs-async bench --quick`` (``make bench``): short cells and tighter budgets, under 3 minutes
QUICK = SweepPlan(
    # 256 concurrent JSON requests of the larger payloads take the emulator seconds each:
    # the full sweep has that level.
    concurrency=(1, 16, 64),
    repeats=2,
    warmup_s=0.05,
    duration_s=0.2,
    in_flight_budget_bytes=16 << 20,
    open_loop_duration_s=0.3,
    open_loop_max_payload_bytes=64 << 10,
    codec_budget_s=0.05,
    max_cell_s=6.0,
    # The SDK's HTTP request on 64x224x224x3 takes 10-35 s here (the emulator's JSON):
    # sent once rather than estimated.
    max_one_request_s=90.0,
)
