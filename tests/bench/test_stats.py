"""Percentiles of the HDR-histogram recorder against exact ones over the raw values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tfs_async.bench.stats import PERCENTILES, LatencyHistogram, median

# HDR with 3 significant digits: any value is within 1/1024 of its bucket's top
_REL = 1 / 1024


def _close(got_ns: float, want_ns: float) -> bool:
    return abs(got_ns - want_ns) <= want_ns * _REL + 1


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=5 * 10**9), min_size=1, max_size=400))
def test_percentiles_match_numpy_within_hdr_precision(values: list[int]) -> None:
    h = LatencyHistogram()
    h.record_many_ns(values)
    ordered = sorted(values)
    for p in PERCENTILES:
        # HdrHistogram's definition: nearest rank, rounded half up, at least the first
        want = ordered[max(1, int(p * len(values) / 100 + 0.5)) - 1]
        assert _close(h.percentile_us(p) * 1000, want), (p, h.percentile_us(p) * 1000, want)
    s = h.summary()
    assert s.count == len(values)
    assert _close(s.max_us * 1000, max(values))
    assert s.p50_us <= s.p90_us <= s.p99_us <= s.p999_us <= s.max_us


@settings(max_examples=10, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=5 * 10**9), min_size=1, max_size=300))
def test_fast_percentiles_equal_the_hdrhistogram_package(values: list[int]) -> None:
    h = LatencyHistogram()
    h.record_many_ns(values)
    raw = h._hist  # the package's own (slow) lookups are the reference
    for p in (50.0, 99.9, 1.0, 100.0):
        assert round(h.percentile_us(p) * 1000) == raw.get_value_at_percentile(p), p
    top = raw.get_highest_equivalent_value(raw.get_max_value())
    assert round(h.summary().max_us * 1000) == top
    assert h.summary().mean_us * 1000 == pytest.approx(raw.get_mean_value(), rel=1e-9)


def test_empty_histogram_summarises_to_zeros() -> None:
    s = LatencyHistogram().summary()
    assert (s.count, s.p50_us, s.max_us) == (0, 0.0, 0.0)
    assert LatencyHistogram().cdf_us() == []


def test_out_of_range_values_are_clamped_not_lost() -> None:
    h = LatencyHistogram()
    h.record_ns(0)
    h.record_ns(-5)
    h.record_ns(10**13)  # beyond the 10-minute ceiling
    assert h.count == 3


def test_merge_pools_the_repeats() -> None:
    a, b = LatencyHistogram(), LatencyHistogram()
    a.record_many_ns([1_000] * 90)
    b.record_many_ns([1_000_000] * 10)
    a.merge(b)
    assert a.count == 100
    assert a.percentile_us(50) == pytest.approx(1.0, rel=_REL)
    assert a.percentile_us(99) == pytest.approx(1000.0, rel=_REL)


def test_encode_decode_round_trip_keeps_every_count() -> None:
    h = LatencyHistogram()
    h.record_many_ns(range(1_000, 200_000, 997))
    back = LatencyHistogram.decode(h.encode())
    assert back.count == h.count
    assert back.summary() == h.summary()


def test_cdf_is_monotonic_and_ends_at_one() -> None:
    h = LatencyHistogram()
    h.record_many_ns(np.random.default_rng(1).integers(1_000, 10**8, size=5_000).tolist())
    cdf = h.cdf_us(points=50)
    assert len(cdf) <= 51
    xs, ys = zip(*cdf, strict=True)
    assert list(xs) == sorted(xs)
    assert list(ys) == sorted(ys)
    assert ys[-1] == pytest.approx(1.0)


def test_median_of_repeats() -> None:
    assert median([]) == 0.0
    assert median([5.0, 1.0, 3.0, 100.0]) == 4.0
