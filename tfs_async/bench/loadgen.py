"""Load generators: a closed loop (N workers back to back) and an open loop (fixed arrival rate).

Both drive an async ``call()`` with no arguments, exclude a warm-up period, time
each request with ``time.perf_counter_ns`` and record the client process's CPU
time over the measured window. Latencies are kept in a plain list during the
window and recorded into the histogram after it, so the histogram's own cost
(a few microseconds per value) is not counted as the client's CPU. A request
that raises is counted by error type and never dropped: it appears in
``errors`` and ``error_count``.

The open loop measures each latency from the request's *scheduled* send time,
not from when it was actually sent, so a stall of the client (or of the event
loop) shows up in the percentiles instead of silently delaying the schedule
(coordinated omission).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from tfs_async.bench.stats import LatencyHistogram

__all__ = ["Call", "LoadResult", "arrival_offsets_ns", "closed_loop", "open_loop"]

#: the request a load generator drives: one await, one request
Call = Callable[[], Awaitable[object]]

_NS = 1_000_000_000


@dataclass
class LoadResult:
    """What one load-generator run measured (warm-up excluded)."""

    histogram: LatencyHistogram
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    first_error: str | None = None
    #: requests that failed during warm-up (not in the measured figures, still reported)
    warmup_errors: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    #: open loop only: the target arrival rate and how late the sends were, at worst
    target_rate: float | None = None
    max_send_lag_us: float = 0.0

    @property
    def error_count(self) -> int:
        """Requests that raised during the measured window."""
        return sum(self.errors.values())

    @property
    def requests(self) -> int:
        """Every request of the measured window, ok or not."""
        return self.ok + self.error_count

    @property
    def rps(self) -> float:
        """Successful requests per second over the measured window."""
        return self.ok / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def cpu_us_per_request(self) -> float:
        """Client process CPU time per request of the measured window, in microseconds."""
        return self.cpu_s * 1e6 / self.requests if self.requests else 0.0

    def note_error(self, exc: BaseException) -> None:
        """Count one failed request."""
        self.errors[type(exc).__name__] += 1
        if self.first_error is None or self.first_error.startswith("warm-up"):
            self.first_error = f"{type(exc).__name__}: {exc}"[:500]


async def closed_loop(
    call: Call,
    *,
    concurrency: int,
    duration_s: float,
    warmup_s: float = 0.0,
    warmup_requests: int = 1,
    max_requests: int | None = None,
) -> LoadResult:
    """Run ``concurrency`` workers, each sending its next request when the last one returns.

    Warm-up lasts ``warmup_s`` and at least ``warmup_requests`` per worker; then
    requests that *start* within ``duration_s`` are measured (at most
    ``max_requests`` of them; at least one per worker, so a slow payload still
    yields a figure). Workers finish their request in flight before returning.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    if duration_s <= 0:
        raise ValueError(f"duration_s must be > 0, got {duration_s}")
    result = LoadResult(histogram=LatencyHistogram())
    budget = max_requests if max_requests is not None else math.inf

    warm_until = time.perf_counter() + warmup_s  # one deadline for all workers

    async def warm() -> None:
        done = 0
        while done < warmup_requests or time.perf_counter() < warm_until:
            # warm-up failures are kept apart but reported: failing only when cold must show
            try:
                await call()
            except Exception as exc:
                result.warmup_errors += 1
                result.first_error = result.first_error or f"warm-up {type(exc).__name__}: {exc}"
            done += 1

    if warmup_s > 0 or warmup_requests > 0:
        await asyncio.gather(*(warm() for _ in range(concurrency)))

    started = 0
    last_done_ns = 0
    latencies: list[int] = []
    record = latencies.append
    t0_ns = time.perf_counter_ns()
    end_ns = t0_ns + int(duration_s * _NS)
    cpu0 = time.process_time()

    async def worker() -> None:
        nonlocal started, last_done_ns
        mine = 0
        while started < budget and (mine == 0 or time.perf_counter_ns() < end_ns):
            started += 1
            mine += 1
            begin = time.perf_counter_ns()
            try:
                await call()
            except Exception as exc:
                result.note_error(exc)
            else:
                result.ok += 1
            now = time.perf_counter_ns()
            record(now - begin)
            if now > last_done_ns:
                last_done_ns = now

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.cpu_s = time.process_time() - cpu0
    result.histogram.record_many_ns(latencies)
    result.wall_s = max(last_done_ns - t0_ns, 1) / _NS
    return result


def arrival_offsets_ns(rate: float, duration_s: float) -> list[int]:
    """Scheduled send times (ns after the start) of a fixed-rate open loop.

    One request every ``1/rate`` seconds, the first at 0, all before ``duration_s``.

    >>> arrival_offsets_ns(4.0, 1.0)
    [0, 250000000, 500000000, 750000000]
    """
    if rate <= 0:
        raise ValueError(f"rate must be > 0, got {rate}")
    count = max(1, math.ceil(rate * duration_s - 1e-9))
    return [round(i * _NS / rate) for i in range(count)]


async def open_loop(
    call: Call,
    *,
    rate: float,
    duration_s: float,
    max_in_flight: int = 1024,
    warmup_requests: int = 1,
) -> LoadResult:
    """Send requests at a fixed ``rate`` for ``duration_s``, whatever the answers' pace.

    Latency is measured from each request's scheduled send time. At most
    ``max_in_flight`` requests are outstanding; a request waiting for a slot is
    late, and that wait counts in its latency (it is not skipped).
    """
    if max_in_flight < 1:
        raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
    result = LoadResult(histogram=LatencyHistogram(), target_rate=rate)
    for _ in range(warmup_requests):
        try:
            await call()
        except Exception as exc:
            result.warmup_errors += 1
            result.first_error = result.first_error or f"warm-up {type(exc).__name__}: {exc}"
    slots = asyncio.Semaphore(max_in_flight)
    offsets = arrival_offsets_ns(rate, duration_s)
    tasks: list[asyncio.Task[None]] = []
    last_done_ns = 0
    max_lag_ns = 0
    latencies: list[int] = []

    async def one(scheduled_ns: int) -> None:
        nonlocal last_done_ns
        async with slots:
            try:
                await call()
            except Exception as exc:
                result.note_error(exc)
            else:
                result.ok += 1
        now = time.perf_counter_ns()
        latencies.append(now - scheduled_ns)
        last_done_ns = max(last_done_ns, now)

    cpu0 = time.process_time()
    t0_ns = time.perf_counter_ns()
    try:
        for offset in offsets:
            scheduled = t0_ns + offset
            delay = scheduled - time.perf_counter_ns()
            if delay > 0:
                # pacing the schedule, not synchronising: a late wake-up is charged to the request
                await asyncio.sleep(delay / _NS)
            max_lag_ns = max(max_lag_ns, time.perf_counter_ns() - scheduled)
            tasks.append(asyncio.create_task(one(scheduled)))
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    result.cpu_s = time.process_time() - cpu0
    result.histogram.record_many_ns(latencies)
    result.wall_s = max(last_done_ns - t0_ns, 1) / _NS
    result.max_send_lag_us = max_lag_ns / 1000.0
    return result
