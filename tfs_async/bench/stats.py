"""Latency statistics: HDR histograms (the ``hdrhistogram`` package) and their summaries.

Latencies are recorded in nanoseconds with 3 significant digits (0.1% relative
error) over 1 ns .. 10 minutes, so a single histogram covers a no-op "request"
and a multi-second one. Summaries are reported in microseconds. A percentile is
HdrHistogram's: the value at rank ``round(p/100 * count)`` (at least 1) in
ascending order, reported as the top of its bucket.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from tfs_async.bench._deps import require

__all__ = ["PERCENTILES", "LatencyHistogram", "LatencySummary", "median"]

#: the percentiles every summary reports
PERCENTILES: tuple[float, ...] = (50.0, 90.0, 99.0, 99.9)

_LOWEST_NS = 1
_HIGHEST_NS = 600 * 1_000_000_000
_SIGNIFICANT_DIGITS = 3


@dataclass(frozen=True)
class LatencySummary:
    """Percentiles of one histogram, in microseconds."""

    count: int
    mean_us: float
    p50_us: float
    p90_us: float
    p99_us: float
    p999_us: float
    max_us: float

    def as_dict(self) -> dict[str, float | int]:
        """The summary as a plain JSON-ready dict."""
        return asdict(self)


class LatencyHistogram:
    """A latency recorder backed by an ``HdrHistogram``.

    Percentiles, the CDF and the maximum are read from the histogram's counts
    with numpy in one pass (the package's own per-percentile lookup walks every
    bucket in Python, ~20 ms each) and cached until the next record or merge.

    >>> h = LatencyHistogram()
    >>> for us in range(1, 101):
    ...     h.record_ns(us * 1000)
    >>> s = h.summary()
    >>> (s.count, round(s.p50_us), round(s.p99_us), round(s.max_us))
    (100, 50, 99, 100)
    """

    def __init__(self) -> None:
        hdrh = require("hdrh.histogram", "hdrhistogram")
        self._hist: Any = hdrh.HdrHistogram(_LOWEST_NS, _HIGHEST_NS, _SIGNIFICANT_DIGITS)
        self._cache: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], float] | None = None

    def record_ns(self, value_ns: int) -> None:
        """Record one latency; values outside the trackable range are clamped into it."""
        self._hist.record_value(min(max(int(value_ns), _LOWEST_NS), _HIGHEST_NS))
        self._cache = None

    def record_many_ns(self, values_ns: Iterable[int]) -> None:
        """Record several latencies."""
        for value in values_ns:
            self.record_ns(value)

    def merge(self, other: LatencyHistogram) -> None:
        """Add every value recorded by ``other`` (e.g. to pool interleaved repeats)."""
        self._hist.add(other._hist)
        self._cache = None

    @property
    def count(self) -> int:
        """How many values were recorded."""
        return int(self._hist.get_total_count())

    def _buckets(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], float]:
        """(top value of each non-empty bucket, cumulative count, mean in ns), ascending."""
        if self._cache is None:
            h = self._hist
            counts = np.ctypeslib.as_array(h.counts)[: h.counts_len].astype(np.int64)
            index = np.flatnonzero(counts)
            half_mag, half = h.sub_bucket_half_count_magnitude, h.sub_bucket_half_count
            bucket = (index >> half_mag) - 1
            sub = (index & (half - 1)) + half
            sub = np.where(bucket < 0, sub - half, sub)
            bucket = np.maximum(bucket, 0)
            shift = bucket + h.unit_magnitude
            size = np.int64(1) << shift
            top = (sub << shift) + size - 1
            # the mean as HdrHistogram computes it: each bucket counted at its middle value
            middle = (sub << shift) + (size >> 1)
            weights = counts[index]
            mean = float((middle * weights).sum()) / float(weights.sum()) if len(index) else 0.0
            self._cache = (top.astype(np.int64), np.cumsum(weights), mean)
        return self._cache

    def _at_percentiles_ns(self, percentiles: Sequence[float]) -> list[int]:
        top, cumulative, _ = self._buckets()
        total = int(cumulative[-1])
        ranks = [max(1, int(min(p, 100.0) * total / 100 + 0.5)) for p in percentiles]
        return [int(top[np.searchsorted(cumulative, r)]) for r in ranks]

    def percentile_us(self, percentile: float) -> float:
        """The value at ``percentile`` (0-100) in microseconds; 0.0 when empty."""
        if self.count == 0:
            return 0.0
        return self._at_percentiles_ns([percentile])[0] / 1000.0

    def summary(self) -> LatencySummary:
        """count, mean, p50/p90/p99/p99.9 and max, in microseconds."""
        if self.count == 0:
            return LatencySummary(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        p50, p90, p99, p999, top = (
            v / 1000.0 for v in self._at_percentiles_ns([*PERCENTILES, 100.0])
        )
        return LatencySummary(
            count=self.count,
            mean_us=self._buckets()[2] / 1000.0,
            p50_us=p50,
            p90_us=p90,
            p99_us=p99,
            p999_us=p999,
            max_us=top,
        )

    def cdf_us(self, points: int = 200) -> list[tuple[float, float]]:
        """(latency in us, fraction of requests at or below it), at most ``points`` + 1 steps."""
        if self.count == 0:
            return []
        top, cumulative, _ = self._buckets()
        keep = np.arange(len(top))
        if len(keep) > points:
            keep = np.unique(
                np.append(np.linspace(0, len(top) - 1, points).astype(int), len(top) - 1)
            )
        total = float(cumulative[-1])
        return [(float(top[i]) / 1000.0, float(cumulative[i]) / total) for i in keep]

    def encode(self) -> str:
        """The full histogram, HdrHistogram's compressed base64 form (decodable with ``decode``)."""
        data: bytes = self._hist.encode()
        return data.decode("ascii")

    @classmethod
    def decode(cls, encoded: str) -> LatencyHistogram:
        """Rebuild a histogram written by :meth:`encode`."""
        hdrh = require("hdrh.histogram", "hdrhistogram")
        out = cls()
        out._hist = hdrh.HdrHistogram.decode(encoded.encode("ascii"))
        return out


def median(values: Sequence[float]) -> float:
    """The median of ``values``, 0.0 when empty (repeats are combined by their median).

    >>> median([3.0, 1.0, 2.0])
    2.0
    """
    return float(statistics.median(values)) if values else 0.0
