"""Faults over real sockets: UNAVAILABLE / 503 bursts, 429s, slow and silent servers, resets.

Server-side faults come from the emulator's :class:`FaultPlan`; byte-level ones
(a reset in the middle of an answer, a listener that accepts and never answers)
from a :class:`FaultProxy` in front of it. Every call carries a deadline, and
every test checks that a call ends no later than its deadline plus 50 ms
(measured here with a monotonic clock): a bound on behaviour, not a speed test.
On a loaded machine the event loop itself can be kept from running (other
processes, the garbage collector); :class:`Stopwatch` disables the collector
while it runs and leaves out the time the loop could not run, which is the
machine's share, not the library's.
"""

from __future__ import annotations

import asyncio
import gc
import time

import numpy as np
import pytest

from tests.support.client import STEP, target_of, within
from tfs_async.client import Client
from tfs_async.errors import (
    ConnectionFailedError,
    DeadlineExceededError,
    ResourceExhaustedError,
    StatusCode,
    UnavailableError,
)
from tfs_async.retry import RetryPolicy
from tfs_async.testing import Fault, ModelServer
from tfs_async.testing.faults import FaultProxy

X = {"x": np.array([1.0, 2.0, 5.0], np.float32)}
Y = [2.5, 3.0, 4.5]
# Short waits between attempts, and a budget that allows every retry of a burst.
QUICK = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, jitter=0.01, budget_min_retries=1000)
# How late a call may end after its deadline.
SLACK = 0.05
# The stopwatch's probe: how often it checks that the event loop runs.
TICK = 0.005


class Stopwatch:
    """Elapsed monotonic time, less the time this event loop was kept from running."""

    def __init__(self) -> None:
        self.started = 0.0
        self.stalled = 0.0
        self.elapsed = 0.0
        self._probe: asyncio.Task[None] | None = None
        self._gc = False

    async def _watch(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(TICK)  # a probe of the loop, not synchronisation
            now = time.monotonic()
            self.stalled += max(0.0, now - last - 2 * TICK)
            last = now

    async def __aenter__(self) -> Stopwatch:
        self._gc = gc.isenabled()
        gc.disable()
        self._probe = asyncio.create_task(self._watch())
        self.started = time.monotonic()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        end = time.monotonic()
        assert self._probe is not None
        self._probe.cancel()
        await asyncio.gather(self._probe, return_exceptions=True)
        if self._gc:
            gc.enable()
        self.elapsed = end - self.started - self.stalled

    def late(self, deadline: float) -> str:
        late = self.elapsed - deadline
        return f"ended {late:.3f} s after the deadline (loop stalled {self.stalled:.3f} s)"


def _proxied(server: ModelServer, proxy: FaultProxy, protocol: str) -> str:
    return f"grpc://{proxy.address}" if protocol == "grpc" else f"http://{proxy.address}"


def _upstream(server: ModelServer, protocol: str) -> tuple[str, int]:
    port = server.grpc_port if protocol == "grpc" else server.rest_port
    assert port is not None
    return ("127.0.0.1", port)


async def test_an_unavailable_burst_is_ridden_through(server: ModelServer, protocol: str) -> None:
    """40 concurrent calls meet 20 UNAVAILABLE (HTTP 503) answers: every call succeeds."""
    assert server.faults is not None
    rule = server.faults.add(Fault(method="predict", error_rate=1.0, times=20))
    client = Client(target_of(server, protocol), timeout=STEP, max_retries=5, retry=QUICK)
    async with client, within(STEP):
        results = await asyncio.gather(*(client.predict("half_plus_two", X) for _ in range(40)))
    assert rule.hits == 20
    assert [r.output.tolist() for r in results] == [Y] * 40


async def test_a_503_that_lasts_fails_typed_after_the_retries(
    server: ModelServer, protocol: str
) -> None:
    assert server.faults is not None
    server.faults.add(Fault(method="predict", error_rate=1.0, message="overloaded"))
    async with Client(target_of(server, protocol), timeout=STEP, max_retries=2, retry=QUICK) as c:
        with pytest.raises(UnavailableError) as caught:
            async with within(STEP):
                await c.predict("half_plus_two", X)
    assert caught.value.attempts == 3
    assert caught.value.message == "overloaded"
    assert caught.value.http_status == (None if protocol == "grpc" else 503)


async def test_429_is_retried_then_typed(server: ModelServer, protocol: str) -> None:
    assert server.faults is not None
    code = StatusCode.RESOURCE_EXHAUSTED
    burst = server.faults.add(Fault(method="predict", error_rate=1.0, code=code, times=2))
    async with Client(target_of(server, protocol), timeout=STEP, max_retries=3, retry=QUICK) as c:
        async with within(STEP):
            assert (await c.predict("half_plus_two", X)).output.tolist() == Y
        assert burst.hits == 2
        server.faults.add(Fault(method="predict", error_rate=1.0, code=code))
        with pytest.raises(ResourceExhaustedError) as caught:
            async with within(STEP):
                await c.predict("half_plus_two", X)
    assert caught.value.attempts == 4
    assert caught.value.http_status == (None if protocol == "grpc" else 429)


@pytest.mark.parametrize("deadline", [0.3, 1.0])
async def test_a_slow_answer_ends_at_the_deadline(
    server: ModelServer, protocol: str, deadline: float
) -> None:
    assert server.faults is not None
    server.faults.add(Fault(method="predict", latency=deadline + 5.0))
    async with Client(target_of(server, protocol), timeout=deadline, retry=QUICK) as c:
        await c.status("half_plus_two")  # connected (and, over REST, no metadata fetch left)
        await c.metadata("half_plus_two")
        with pytest.raises(DeadlineExceededError):
            async with within(STEP), Stopwatch() as clock:
                await c.predict("half_plus_two", X)
    assert clock.elapsed <= deadline + SLACK, clock.late(deadline)


async def test_a_slow_answer_within_the_deadline_succeeds(
    server: ModelServer, protocol: str
) -> None:
    assert server.faults is not None
    rule = server.faults.add(Fault(method="predict", latency=0.1))
    async with Client(target_of(server, protocol), timeout=1.0) as c, within(STEP):
        assert (await c.predict("half_plus_two", X)).output.tolist() == Y
    assert rule.hits == 1


async def test_a_stalled_call_ends_at_the_deadline_and_frees_the_server(
    server: ModelServer, protocol: str
) -> None:
    assert server.faults is not None
    server.faults.add(Fault(method="predict", stall_rate=1.0, times=1))
    async with Client(target_of(server, protocol), timeout=0.5) as c:
        await c.metadata("half_plus_two")
        with pytest.raises(DeadlineExceededError):
            async with within(STEP), Stopwatch() as clock:
                await c.predict("half_plus_two", X)
        # The server notices the caller went away: nothing stays stalled.
        async with within(STEP):
            await server.faults.wait_unstalled()
        async with within(STEP):
            assert (await c.predict("half_plus_two", X)).output.tolist() == Y
    assert clock.elapsed <= 0.5 + SLACK, clock.late(0.5)


async def test_a_reset_mid_response_is_retried_on_a_new_connection(
    server: ModelServer, protocol: str
) -> None:
    proxy = FaultProxy(_upstream(server, protocol), reset_after=64 * 1024, resets_left=1)
    async with proxy:
        client = Client(_proxied(server, proxy, protocol), timeout=STEP, retry=QUICK)
        async with client, within(STEP):
            result = await client.predict("big", {"x": np.array([7.0], np.float32)})
    assert proxy.resets == 1
    assert result.output.shape == (256 * 1024,)
    assert bool(np.all(result.output == 7.0))


async def test_resets_on_every_connection_fail_typed_within_the_deadline(
    server: ModelServer, protocol: str
) -> None:
    deadline = 3.0
    async with (
        FaultProxy(_upstream(server, protocol), reset_after=64 * 1024) as p,
        Client(_proxied(server, p, protocol), timeout=deadline, max_retries=2, retry=QUICK) as c,
    ):
        if protocol == "http":
            await c.metadata("big")  # small answers pass; the big one is cut
        with pytest.raises((ConnectionFailedError, DeadlineExceededError)) as caught:
            async with within(STEP), Stopwatch() as clock:
                await c.predict("big", {"x": np.array([7.0], np.float32)})
    assert p.resets >= 1
    assert clock.elapsed <= deadline + SLACK, clock.late(deadline)
    if isinstance(caught.value, ConnectionFailedError):
        assert caught.value.attempts == 3


async def test_a_server_that_accepts_and_never_answers(protocol: str) -> None:
    deadline = 0.5
    async with FaultProxy(None, blackhole=True) as p:
        target = f"grpc://{p.address}" if protocol == "grpc" else f"http://{p.address}"
        async with Client(target, timeout=deadline, retry=QUICK) as c:
            with pytest.raises(DeadlineExceededError):
                async with within(STEP), Stopwatch() as clock:
                    await c.status("half_plus_two")
    assert p.accepted >= 1
    assert clock.elapsed <= deadline + SLACK, clock.late(deadline)
