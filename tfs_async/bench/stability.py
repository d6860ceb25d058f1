"""Stability mode for ``tfs-async bench``: measure a cell in windows until it settles.

The rule is Triton ``perf_analyzer``'s (``--stability-percentage``,
``--max-trials``): a cell is measured in consecutive windows (each one the
plan's measured duration); it is *stable* once, over the last 3 windows, the
ratio max / min stays within the stability percentage for both throughput
(successful requests per second) and p99 latency. It then reports the last 3
windows merged (their requests, time and latency histogram together). After
``max_trials`` windows without stability it stops and reports the last 3
windows anyway, marked unstable.

>>> is_stable([(100.0, 2000.0), (104.0, 2050.0), (98.0, 1990.0)], 10.0)
True
>>> is_stable([(100.0, 2000.0), (104.0, 2600.0), (98.0, 1990.0)], 10.0)
False
>>> is_stable([(100.0, 2000.0), (100.0, 2000.0)], 10.0)
False
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from tfs_async.bench.loadgen import LoadResult
from tfs_async.bench.stats import LatencyHistogram

__all__ = ["WINDOWS", "Stability", "StableResult", "is_stable", "measure_until_stable"]

#: windows compared (perf_analyzer's "recent 3 measurements")
WINDOWS = 3


@dataclass(frozen=True)
class Stability:
    """``--stability-percentage`` and ``--max-trials`` (perf_analyzer's defaults: 10 %, 10)."""

    percentage: float = 10.0
    max_trials: int = 10

    def __post_init__(self) -> None:
        if not self.percentage > 0:
            raise ValueError(f"the stability percentage must be > 0, got {self.percentage!r}")
        if self.max_trials < WINDOWS:
            raise ValueError(
                f"max trials must be at least {WINDOWS} (stability compares the last "
                f"{WINDOWS} windows), got {self.max_trials}"
            )


@dataclass
class StableResult:
    """The merged last windows, how many windows ran and whether they settled."""

    result: LoadResult
    trials: int
    stable: bool
    #: (requests/s, p99 us) of every window, in order
    windows: list[tuple[float, float]]


def _within(values: Sequence[float], percentage: float) -> bool:
    low, high = min(values), max(values)
    if low <= 0:
        return high <= 0
    return high / low <= 1.0 + percentage / 100.0


def is_stable(windows: Sequence[tuple[float, float]], percentage: float) -> bool:
    """Whether the last 3 ``(requests/s, p99)`` windows vary within ``percentage`` (max / min)."""
    if len(windows) < WINDOWS:
        return False
    recent = windows[-WINDOWS:]
    return _within([w[0] for w in recent], percentage) and _within(
        [w[1] for w in recent], percentage
    )


def merge(results: Sequence[LoadResult]) -> LoadResult:
    """Several windows as one: requests, errors, time and histograms added up."""
    histogram = LatencyHistogram()
    merged = LoadResult(histogram)
    for r in results:
        histogram.merge(r.histogram)
        merged.ok += r.ok
        merged.errors.update(r.errors)
        merged.first_error = merged.first_error or r.first_error
        merged.warmup_errors += r.warmup_errors
        merged.wall_s += r.wall_s
        merged.cpu_s += r.cpu_s
    return merged


async def measure_until_stable(
    window: Callable[[], Awaitable[LoadResult]], stability: Stability
) -> StableResult:
    """Run ``window()`` until the last 3 windows are stable or ``max_trials`` ran."""
    results: list[LoadResult] = []
    figures: list[tuple[float, float]] = []
    while len(results) < stability.max_trials:
        result = await window()
        results.append(result)
        figures.append((result.rps, result.histogram.percentile_us(99)))
        if is_stable(figures, stability.percentage):
            return StableResult(merge(results[-WINDOWS:]), len(results), True, figures)
    return StableResult(merge(results[-WINDOWS:]), len(results), False, figures)


async def measure_cell(
    window: Callable[[int], Awaitable[LoadResult]],
    stability: Stability | None,
    notes: list[str],
    label: str,
) -> LoadResult:
    """One cell: ``window(0)`` once, or windows until stable (``window(trial)``, from 0).

    An unstable cell is reported in ``notes`` with its windows' figures.
    """
    if stability is None:
        return await window(0)
    trial = iter(range(stability.max_trials))
    outcome = await measure_until_stable(lambda: window(next(trial)), stability)
    if not outcome.stable:
        seen = ", ".join(f"{rps:.0f}/s p99 {p99:.0f} us" for rps, p99 in outcome.windows[-WINDOWS:])
        notes.append(
            f"{label}: not stable within {stability.percentage:g} % after {outcome.trials} "
            f"windows (last: {seen}); the last {WINDOWS} windows are reported"
        )
    return outcome.result
