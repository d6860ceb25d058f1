"""One bad row fails its caller only: merged requests refused by the server are bisected.

The ``picky`` and ``strict`` signatures refuse a whole request when one of its
rows starts with -1 (as a TF assert op would), with INVALID_ARGUMENT and
FAILED_PRECONDITION. Calls gathered together enter the batcher in one turn of
the event loop and go as one request.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from tests.support.batching import BAD, MODEL, Recorder, batch_tasks, rows, target_of
from tests.support.client import STEP, within
from tfs_async import (
    Batching,
    Client,
    FailedPreconditionError,
    InvalidArgumentError,
    TFServingError,
    UnavailableError,
)
from tfs_async.testing import Fault, ModelServer

HOLD = STEP * 10


def bad_rows(caller: int) -> npt.NDArray[np.float32]:
    x = rows(caller, 1)
    x[0, 0] = BAD
    return x


def client_of(server: ModelServer, protocol: str, batching: Batching, **kw: Any) -> Client:
    kw.setdefault("max_retries", 0)
    return Client(target_of(server, protocol), timeout=STEP, batching=batching, **kw)


@pytest.mark.parametrize(
    ("sig", "error_type"),
    [("picky", InvalidArgumentError), ("strict", FailedPreconditionError)],
)
async def test_only_the_callers_at_fault_fail(
    server: ModelServer,
    rec: Recorder,
    protocol: str,
    sig: str,
    error_type: type[TFServingError],
) -> None:
    if protocol == "http":
        error_type = InvalidArgumentError  # REST folds FAILED_PRECONDITION into a 400
    bad = {3, 17, 40}
    inputs = [bad_rows(i) if i in bad else rows(i, 1) for i in range(65)]
    async with client_of(server, protocol, Batching(max_batch_size=64, max_delay=HOLD)) as client:
        async with within(STEP):
            await client.metadata(MODEL)  # HTTP needs it: all callers then start together
            results = await asyncio.gather(
                *(client.predict(MODEL, {"x": x}, signature=sig) for x in inputs),
                return_exceptions=True,
            )
        stats = client.batching_stats()
    for i, result in enumerate(results):
        if i in bad:
            assert isinstance(result, error_type), (i, result)
            assert isinstance(result, TFServingError)
            assert "-1" in result.message
            assert result.model is not None
            assert result.model.name == MODEL
        else:
            assert not isinstance(result, BaseException), (i, result)
            np.testing.assert_array_equal(result.output, inputs[i] * 2)
    assert len({id(results[i]) for i in bad}) == 3  # each its own exception object
    sizes = rec.sizes[sig]
    assert sizes[0] == 64  # one merged request, refused; the 65th caller waits for the group
    assert sizes[-1] == 1
    assert stats.isolation_splits > 0
    assert stats.isolated_errors == 3
    # Bisection is bounded: at most 2n - 2 more requests for n callers.
    assert len(sizes) - 2 <= 2 * 64 - 2
    assert stats.flushes["isolation"] == len(sizes) - 2
    assert not batch_tasks()


@pytest.mark.parametrize("cap", [0, None])
async def test_isolation_can_be_turned_off(
    server: ModelServer, rec: Recorder, protocol: str, cap: int | None
) -> None:
    inputs = [bad_rows(i) if i == 2 else rows(i, 1) for i in range(5)]
    batching = Batching(max_delay=HOLD, max_isolation_requests=cap)
    async with client_of(server, protocol, batching) as client, within(STEP):
        await client.metadata(MODEL)
        results = await asyncio.gather(
            *(client.predict(MODEL, {"x": x}, signature="picky") for x in inputs),
            return_exceptions=True,
        )
    failed = [i for i, r in enumerate(results) if isinstance(r, InvalidArgumentError)]
    assert failed == ([0, 1, 2, 3, 4] if cap == 0 else [2])
    assert rec.sizes["picky"][0] == 5


async def test_transport_failures_follow_the_retry_rules_for_every_caller(
    server: ModelServer, rec: Recorder, protocol: str
) -> None:
    assert server.faults is not None
    async with client_of(server, protocol, Batching(max_delay=HOLD), max_retries=3) as client:
        async with within(STEP):
            first = await client.predict(MODEL, {"x": rows(0, 1)})  # connected, metadata cached
            rule = server.faults.add(Fault(method="predict", error_rate=1.0, times=2))
            results = await asyncio.gather(
                *(client.predict(MODEL, {"x": rows(i, 1)}) for i in range(1, 6))
            )
        assert rule.hits == 2  # UNAVAILABLE twice, retried: nobody saw it
        np.testing.assert_array_equal(first.output, rows(0, 1) * 2)
        for i, result in enumerate(results, start=1):
            np.testing.assert_array_equal(result.output, rows(i, 1) * 2)
        # Without retries the failure reaches every caller of the request, each its own copy.
        server.faults.add(Fault(method="predict", error_rate=1.0, times=2))
        quick = client.with_options(max_retries=0)
        async with within(STEP):
            failed = await asyncio.gather(
                *(quick.predict(MODEL, {"x": rows(i, 1)}) for i in range(4)),
                return_exceptions=True,
            )
    assert all(isinstance(e, UnavailableError) for e in failed), failed
    assert len({id(e) for e in failed}) == 4
    assert client.batching_stats().isolation_splits == 0  # not the callers' fault: no bisection
