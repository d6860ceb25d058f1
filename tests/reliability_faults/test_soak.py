"""Soak: many requests with cancellations mixed in; resources return to their level.

The emulator runs in its own process, so what this process holds is the
client's alone. Per transport: warm up (the pool's connections open, caches
fill), take the levels (open file descriptors from ``/proc/self/fd``, asyncio
tasks, established connections to the server, Python memory traced by
tracemalloc, RSS), run ``TFS_ASYNC_SOAK_REQUESTS`` predicts (2,000 in the
default suite, 20,000 in ``make test-soak``) 32 at a time, where every 7th call
is cancelled by its caller after a millisecond or two and every 13th has a
2 ms deadline, then take the levels again, and once more after ``close()``.

Every request is accounted for: succeeded (with the right answer), cancelled,
or DeadlineExceededError; nothing else, nothing lost. Tolerances:

* file descriptors and connections: the pool's size at most (a cancelled HTTP
  request closes its connection; the pool may not have re-opened it yet);
  after ``close()``: back to the level before the client existed;
* tasks: back to the warm level exactly;
* traced Python memory: 1 MiB above the warm level; a leak of 64 bytes per
  request would exceed it at 20,000 requests, and bounded caches (URLs,
  shapes, layouts) fill during the warm-up;
* RSS: 64 MiB above the warm level (the allocator keeps freed pages; gRPC's C
  core is invisible to tracemalloc): catches a leak of ~3 KiB per request at 20,000.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from tests.support.client import within
from tfs_async.client import Client
from tfs_async.errors import DeadlineExceededError
from tfs_async.testing.process import ModelServerProcess

REQUESTS = int(os.environ.get("TFS_ASYNC_SOAK_REQUESTS", "2000"))
CONCURRENCY = 32
POOL = 8
X = {"x": np.array([1.0, 2.0, 5.0], np.float32)}
Y = [2.5, 3.0, 4.5]
MEMORY_SLACK = 1 << 20
RSS_SLACK = 64 << 20


@pytest.fixture(scope="module")
def serving() -> Iterator[ModelServerProcess]:
    with ModelServerProcess(
        python_models=["tfs_async.testing.half_plus_two:half_plus_two_model"]
    ) as server:
        yield server


@dataclass(frozen=True)
class Levels:
    fds: int
    tasks: int
    connections: int
    traced: int
    rss: int


def _connections_to(port: int) -> int:
    """Established TCP connections whose remote end is ``port`` on this host."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                if fields[3] == "01" and int(fields[2].rsplit(":", 1)[1], 16) == port:
                    count += 1
    return count


def _levels(port: int) -> Levels:
    gc.collect()
    with open("/proc/self/statm") as statm:
        rss = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return Levels(
        fds=len(os.listdir("/proc/self/fd")),
        tasks=len(asyncio.all_tasks()),
        connections=_connections_to(port),
        traced=tracemalloc.get_traced_memory()[0],
        rss=rss,
    )


async def _one(client: Client, i: int, outcomes: Counter[str]) -> None:
    try:
        if i % 7 == 3:
            # The caller gives up after 1-2 ms: the call is cancelled wherever it is.
            async with within(0.001 + (i % 3) * 0.0005):
                result = await client.predict("half_plus_two", X)
        elif i % 13 == 5:
            result = await client.predict("half_plus_two", X, timeout=0.002)
        else:
            result = await client.predict("half_plus_two", X)
    except asyncio.TimeoutError:
        outcomes["cancelled"] += 1
        return
    except DeadlineExceededError:
        outcomes["deadline"] += 1
        return
    except Exception as error:  # anything else is a failure the test reports
        outcomes[f"failed: {type(error).__name__}: {error}"] += 1
        return
    outcomes["ok" if result.output.tolist() == Y else "wrong"] += 1


async def _soak(client: Client, count: int) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    queue = iter(range(count))

    async def worker() -> None:
        for i in queue:
            await _one(client, i, outcomes)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return outcomes


@pytest.mark.parametrize("protocol", ["grpc", "http"])
async def test_soak_with_cancellations(serving: ModelServerProcess, protocol: str) -> None:
    port = serving.grpc_port if protocol == "grpc" else serving.rest_port
    assert port is not None
    target = f"grpc://{serving.grpc_target}" if protocol == "grpc" else serving.rest_url
    # A generous bound on the whole soak: a hang fails instead of blocking the suite.
    bound = 60.0 + REQUESTS * 0.02
    # A first client, used and closed: what stays is the library's process-wide
    # state (gRPC's polling engine and wakeup fds, imported modules), not a leak.
    async with Client(target, timeout=10.0) as first, within(10.0):
        await first.predict("half_plus_two", X)
    tracemalloc.start()
    try:
        before = _levels(port)
        client = Client(target, timeout=10.0, max_retries=0, pool_size=POOL)
        async with within(bound):
            warm = await _soak(client, 500)
            start = _levels(port)
            started = time.monotonic()
            outcomes = await _soak(client, REQUESTS)
            elapsed = time.monotonic() - started
            end = _levels(port)
            await client.close()
            # The sockets are closed; wait (bounded) for the kernel to show it.
            for _ in range(100):
                if _connections_to(port) <= before.connections:
                    break
                await asyncio.sleep(0.05)
            closed = _levels(port)
    finally:
        tracemalloc.stop()
    report = (
        f"{protocol}: {REQUESTS} requests in {elapsed:.1f} s, outcomes {dict(outcomes)}; "
        f"levels before {before}, warm {start}, after {end}, closed {closed}"
    )
    print(report)
    assert set(warm) <= {"ok", "cancelled", "deadline"}, report
    # Nothing lost, nothing wrong, nothing but the three expected outcomes.
    assert sum(outcomes.values()) == REQUESTS, report
    assert set(outcomes) <= {"ok", "cancelled", "deadline"}, report
    assert outcomes["ok"] >= REQUESTS * 0.7, report
    # Levels after the soak.
    assert end.tasks == start.tasks, report
    assert end.fds <= start.fds + POOL, report
    assert end.connections <= max(start.connections, POOL), report
    assert end.traced <= start.traced + MEMORY_SLACK, report
    assert end.rss <= start.rss + RSS_SLACK, report
    # And after close(): what the process held before the client existed.
    assert closed.connections <= before.connections, report
    assert closed.fds <= before.fds, report
    assert closed.tasks <= before.tasks, report
