"""Retries against the emulator with injected faults, over both transports."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

from tests.support.client import STEP, half_plus_two, target_of, within
from tests.support.harness import listeners
from tfs_async.client import Client
from tfs_async.errors import (
    DeadlineExceededError,
    InvalidArgumentError,
    StatusCode,
    UnavailableError,
)
from tfs_async.retry import RetryPolicy
from tfs_async.testing import Fault, FaultPlan, ModelServer, ServerCore

X = {"x": np.array([1.0, 2.0, 5.0], np.float32)}
QUICK = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, jitter=0.01)


@pytest_asyncio.fixture
async def core(models_dir: Path) -> AsyncIterator[ServerCore]:
    core = ServerCore([half_plus_two(models_dir)])
    async with within(STEP):
        await core.start()
    yield core
    async with within(STEP):
        await core.stop()


def _target(protocol: str, grpc_port: int, rest_port: int) -> str:
    return (
        f"grpc://127.0.0.1:{grpc_port}" if protocol == "grpc" else f"http://127.0.0.1:{rest_port}"
    )


def _predicts(seen: list[dict[str, str]]) -> list[dict[str, str]]:
    # The client fetches the metadata once (to name the single input): predicts only.
    return [h for h in seen if h[":path"].lower().endswith("predict")]


async def test_fail_twice_then_succeed_with_the_same_metadata_each_time(
    core: ServerCore, protocol: str
) -> None:
    plan = FaultPlan(seed=3)
    rule = plan.add(Fault(method="predict", error_rate=1.0, code=StatusCode.UNAVAILABLE, times=2))
    async with listeners(core, faults=plan) as where:
        target = _target(protocol, where.grpc_port, where.rest_port)
        async with Client(
            target,
            timeout=STEP,
            max_retries=3,
            retry=QUICK,
            metadata={"authorization": "Bearer t0k"},
        ) as client:
            result = await client.predict("half_plus_two", X)
    np.testing.assert_array_equal(result.output, [2.5, 3.0, 4.5])
    assert rule.hits == 2
    attempts = _predicts(where.seen)
    assert len(attempts) == 3
    assert all(h.get("authorization") == "Bearer t0k" for h in attempts)


async def test_exhausted_retries_report_every_attempt(core: ServerCore, protocol: str) -> None:
    plan = FaultPlan(seed=3)
    plan.add(Fault(method="predict", error_rate=1.0, code=StatusCode.UNAVAILABLE))
    async with listeners(core, faults=plan) as where:
        target = _target(protocol, where.grpc_port, where.rest_port)
        async with Client(target, timeout=STEP, max_retries=2, retry=QUICK) as client:
            with pytest.raises(UnavailableError) as raised:
                await client.predict("half_plus_two", X)
    error = raised.value
    assert error.attempts == 3
    assert len(error.previous) == 2
    assert isinstance(error.__cause__, UnavailableError)


async def test_budget_exhausted_stops_hammering(core: ServerCore, protocol: str) -> None:
    plan = FaultPlan(seed=3)
    rule = plan.add(Fault(method="predict", error_rate=1.0, code=StatusCode.UNAVAILABLE))
    stingy = RetryPolicy(initial_backoff=0.001, jitter=0.0, budget_ratio=0.0, budget_min_retries=3)
    async with listeners(core, faults=plan) as where:
        target = _target(protocol, where.grpc_port, where.rest_port)
        async with Client(target, timeout=STEP, max_retries=5, retry=stingy) as client:
            for _ in range(4):
                with pytest.raises(UnavailableError):
                    await client.predict("half_plus_two", X)
    # 4 calls, 3 retries in the whole budget: 7 attempts, not 4 * 6.
    assert rule.hits == 7


async def test_no_retry_on_invalid_argument(core: ServerCore, protocol: str) -> None:
    plan = FaultPlan(seed=3)
    rule = plan.add(Fault(method="predict", error_rate=1.0, code=StatusCode.INVALID_ARGUMENT))
    async with listeners(core, faults=plan) as where:
        target = _target(protocol, where.grpc_port, where.rest_port)
        async with Client(target, timeout=STEP, max_retries=5, retry=QUICK) as client:
            with pytest.raises(InvalidArgumentError) as raised:
                await client.predict("half_plus_two", X)
    assert rule.hits == 1
    assert raised.value.attempts == 1


async def test_deadline_covers_all_attempts(core: ServerCore, protocol: str) -> None:
    plan = FaultPlan(seed=3)
    plan.add(Fault(method="predict", stall_rate=1.0))
    async with listeners(core, faults=plan) as where:
        target = _target(protocol, where.grpc_port, where.rest_port)
        async with Client(target, timeout=STEP, max_retries=5, retry=QUICK) as client:
            await client.metadata("half_plus_two")
            started = time.monotonic()
            with pytest.raises(DeadlineExceededError):
                await client.predict("half_plus_two", X, timeout=0.5)
            elapsed = time.monotonic() - started
        plan.release_stalls()
    assert 0.5 <= elapsed < 0.5 + 2.0  # generous margin for a loaded machine


async def test_dropped_connections_are_retried(core: ServerCore, protocol: str) -> None:
    plan = FaultPlan(seed=3)
    rule = plan.add(Fault(method="predict", drop_rate=1.0, times=1))
    async with listeners(core, faults=plan) as where:
        target = _target(protocol, where.grpc_port, where.rest_port)
        async with Client(target, timeout=STEP, max_retries=2, retry=QUICK) as client:
            result = await client.predict("half_plus_two", X)
    assert rule.hits == 1
    np.testing.assert_array_equal(result.output, [2.5, 3.0, 4.5])


async def test_server_restart_is_survived_by_retries(server: ModelServer, protocol: str) -> None:
    async with Client(target_of(server, protocol), timeout=STEP, max_retries=5, retry=QUICK) as c:
        await c.predict("half_plus_two", X)
        await server.restart()
        result = await c.predict("half_plus_two", X)
    np.testing.assert_array_equal(result.output, [2.5, 3.0, 4.5])


async def test_loading_retry_is_opt_in(server: ModelServer) -> None:
    async with Client(
        target_of(server, "grpc"),
        timeout=STEP,
        retry=RetryPolicy(
            initial_backoff=0.001, jitter=0.0, retry_loading=True, max_loading_retries=2
        ),
    ) as client:
        assert server.faults is not None
        rule = server.faults.add(
            Fault(method="predict", error_rate=1.0, code=StatusCode.NOT_FOUND, times=2)
        )
        result = await client.predict("half_plus_two", X)
    assert rule.hits == 2
    np.testing.assert_array_equal(result.output, [2.5, 3.0, 4.5])
