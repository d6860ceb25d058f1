"""Closed- and open-loop load generation: counts, errors, concurrency, coordinated omission."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tfs_async.bench.loadgen import arrival_offsets_ns, closed_loop, open_loop

TIMEOUT = 30


class Probe:
    """A fake request: yields to the loop once and tracks in-flight calls."""

    def __init__(self, fail_every: int = 0) -> None:
        self.calls = 0
        self.in_flight = 0
        self.peak = 0
        self.fail_every = fail_every

    async def __call__(self) -> None:
        self.calls += 1
        n = self.calls
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(0)  # one loop turn: lets the other workers start
            if self.fail_every and n % self.fail_every == 0:
                raise ConnectionError(f"request {n} failed")
        finally:
            self.in_flight -= 1


async def test_closed_loop_runs_n_workers_and_counts_every_request() -> None:
    probe = Probe()
    async with asyncio.timeout(TIMEOUT):
        r = await closed_loop(
            probe, concurrency=8, duration_s=60, warmup_s=0, warmup_requests=1, max_requests=200
        )
    assert probe.peak == 8
    assert (r.ok, r.error_count) == (200, 0)
    assert r.histogram.count == 200
    assert probe.calls == 200 + 8  # measured + one warm-up request per worker
    assert r.rps > 0
    assert r.cpu_s >= 0


async def test_closed_loop_counts_errors_instead_of_dropping_them() -> None:
    probe = Probe(fail_every=4)
    async with asyncio.timeout(TIMEOUT):
        r = await closed_loop(
            probe, concurrency=3, duration_s=60, warmup_requests=0, max_requests=100
        )
    assert r.ok + r.error_count == 100
    assert r.errors == {"ConnectionError": 25}
    assert r.histogram.count == 100  # failed requests still have a latency
    assert "failed" in (r.first_error or "")


async def test_closed_loop_keeps_warm_up_failures_apart() -> None:
    probe = Probe(fail_every=1)
    async with asyncio.timeout(TIMEOUT):
        r = await closed_loop(probe, concurrency=2, duration_s=60, max_requests=4)
    assert r.warmup_errors == 2
    assert (r.error_count, r.ok) == (4, 0)


async def test_closed_loop_stops_after_its_duration() -> None:
    probe = Probe()
    begin = time.perf_counter()
    async with asyncio.timeout(TIMEOUT):
        r = await closed_loop(probe, concurrency=2, duration_s=0.05, warmup_requests=0)
    assert r.ok > 2
    assert time.perf_counter() - begin < 5


@pytest.mark.parametrize("bad", [{"concurrency": 0}, {"duration_s": 0}])
async def test_closed_loop_rejects_bad_settings(bad: dict[str, float]) -> None:
    kwargs = {"concurrency": 1, "duration_s": 1.0, **bad}
    with pytest.raises(ValueError, match="must be"):
        await closed_loop(Probe(), **kwargs)  # type: ignore[arg-type]


@settings(deadline=None)
@given(
    rate=st.floats(min_value=1, max_value=1e4, allow_nan=False),
    duration=st.floats(min_value=0.001, max_value=1),
)
def test_arrival_offsets_are_evenly_spaced_at_the_rate(rate: float, duration: float) -> None:
    offsets = arrival_offsets_ns(rate, duration)
    assert offsets[0] == 0
    assert offsets == sorted(offsets)
    assert all(o < duration * 1e9 + 1 for o in offsets)
    assert abs(len(offsets) - max(1, rate * duration)) <= 1
    if len(offsets) > 1:
        gaps = {b - a for a, b in itertools.pairwise(offsets)}
        assert max(gaps) - min(gaps) <= 1  # rounding only


async def test_open_loop_sends_exactly_the_scheduled_requests() -> None:
    probe = Probe()
    async with asyncio.timeout(TIMEOUT):
        r = await open_loop(probe, rate=2000, duration_s=0.05, warmup_requests=1)
    assert r.ok == 100
    assert probe.calls == 101
    assert r.target_rate == 2000


def _spin(seconds: float) -> None:
    """Hold the event loop (a client stall), bounded by ``seconds``."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def test_open_loop_charges_a_stall_to_every_request_scheduled_during_it() -> None:
    # The first request blocks the event loop for 60 ms. A closed loop would show one slow
    # request; the open loop must show every request that was due during the stall as late.
    stall = 0.06
    first = True

    async def stalling() -> None:
        nonlocal first
        if first:
            first = False
            _spin(stall)
        await asyncio.sleep(0)

    async with asyncio.timeout(TIMEOUT):
        r = await open_loop(stalling, rate=1000, duration_s=0.2, warmup_requests=0)
    assert r.ok == 200
    # requests due in the first 30 ms waited at least until the stall ended (>= 30 ms late)
    slow = r.histogram.count - _count_below(r, 30_000)
    assert slow >= 30
    assert r.max_send_lag_us >= 30_000

    first = True
    async with asyncio.timeout(TIMEOUT):
        c = await closed_loop(
            stalling, concurrency=1, duration_s=60, warmup_requests=0, max_requests=200
        )
    # the closed loop hides it: one slow request (a few more only if the machine stalls too)
    assert 1 <= c.histogram.count - _count_below(c, 30_000) <= 5


def _count_below(r: object, limit_us: float) -> int:
    cdf = r.histogram.cdf_us(points=10_000)  # type: ignore[attr-defined]
    below = [frac for us, frac in cdf if us < limit_us]
    total: int = r.histogram.count  # type: ignore[attr-defined]
    return round(below[-1] * total) if below else 0


async def test_open_loop_bounds_requests_in_flight() -> None:
    # The first request stalls the loop until all 20 are overdue; the scheduler then launches
    # the other 19 at once, and only the cap keeps them from all being in flight together.
    peak = in_flight = 0
    first = True

    async def call() -> None:
        nonlocal peak, in_flight, first
        if first:
            first = False
            _spin(0.05)
        in_flight += 1
        peak = max(peak, in_flight)
        for _ in range(3):
            await asyncio.sleep(0)  # stay in flight for a few loop turns
        in_flight -= 1

    async with asyncio.timeout(TIMEOUT):
        r = await open_loop(call, rate=500, duration_s=0.04, max_in_flight=4, warmup_requests=0)
    assert r.ok == 20
    assert peak == 4
    # every request was due before the stall ended: all are charged for it
    assert r.histogram.summary().p50_us >= 10_000
