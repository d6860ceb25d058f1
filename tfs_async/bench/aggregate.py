"""Combining the repeats of a cell: median throughput and CPU, pooled latency histogram."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from tfs_async.bench.results import Cell
from tfs_async.bench.stats import LatencyHistogram, LatencySummary, median

__all__ = ["Aggregate", "AggregateKey", "aggregate"]

#: (contender, payload, mode, concurrency)
AggregateKey = tuple[str, str, str, int]


@dataclass
class Aggregate:
    """One contender on one payload at one load, over all repeats."""

    contender: str
    protocol: str
    role: str
    payload: str
    mode: str
    concurrency: int
    histogram: LatencyHistogram
    rps_runs: list[float] = field(default_factory=list)
    cpu_runs: list[float] = field(default_factory=list)
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    warmup_errors: int = 0
    first_error: str | None = None
    target_rate: float | None = None

    @property
    def rps(self) -> float:
        """Median requests/s over the repeats."""
        return median(self.rps_runs)

    @property
    def cpu_us_per_request(self) -> float:
        """Median client CPU per request over the repeats (us)."""
        return median(self.cpu_runs)

    @property
    def latency(self) -> LatencySummary:
        """Percentiles of every measured request of every repeat (pooled histogram)."""
        return self.histogram.summary()

    @property
    def error_count(self) -> int:
        """Failed requests of the measured windows."""
        return sum(self.errors.values())


def aggregate(cells: Iterable[Cell]) -> dict[AggregateKey, Aggregate]:
    """Group cells by (contender, payload, mode, concurrency) and combine their repeats."""
    out: dict[AggregateKey, Aggregate] = {}
    for cell in cells:
        key = (cell.contender, cell.payload, cell.mode, cell.concurrency)
        agg = out.get(key)
        if agg is None:
            agg = out[key] = Aggregate(
                cell.contender,
                cell.protocol,
                cell.role,
                cell.payload,
                cell.mode,
                cell.concurrency,
                LatencyHistogram(),
                target_rate=cell.result.target_rate,
            )
        r = cell.result
        agg.histogram.merge(r.histogram)
        agg.rps_runs.append(r.rps)
        agg.cpu_runs.append(r.cpu_us_per_request)
        agg.ok += r.ok
        agg.errors.update(r.errors)
        agg.warmup_errors += r.warmup_errors
        agg.first_error = agg.first_error or r.first_error
    return out
