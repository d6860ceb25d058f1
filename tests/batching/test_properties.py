"""Properties of batching under random mixes, against the emulator over real sockets.

Random callers (signatures, trailing shapes, row counts, rows the server
refuses, tight deadlines, cancellations), random settings and injected
transport failures: every caller gets exactly its own rows in its own order, or
its own error; nothing is left pending after close.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.batching import BAD, MODEL, after_started, batch_tasks, rows, target_of
from tests.support.client import STEP, within
from tfs_async import (
    Batching,
    Client,
    DeadlineExceededError,
    InvalidArgumentError,
    UnavailableError,
)
from tfs_async.testing import Fault, ModelServer


@dataclass(frozen=True)
class Caller:
    signature: str  # "serving_default" (never refuses) or "picky" (refuses BAD rows)
    count: int
    cols: int
    bad: bool
    tight: bool  # a deadline so short it may pass before the answer
    cancel: bool  # cancelled once queued or in flight

    def inputs(self, index: int) -> npt.NDArray[np.float32]:
        x = rows(index, self.count, self.cols)
        if self.bad and self.signature == "picky":
            x[-1, 0] = BAD
        return x


callers = st.builds(
    Caller,
    signature=st.sampled_from(["serving_default", "picky"]),
    count=st.integers(1, 4),
    cols=st.sampled_from([2, 3]),
    bad=st.booleans(),
    tight=st.integers(0, 3).map(lambda n: n == 0),
    cancel=st.integers(0, 5).map(lambda n: n == 0),
)
batchings = st.builds(
    Batching,
    max_batch_size=st.integers(1, 8),
    max_delay=st.sampled_from([0.0, 0.001, 0.05]),
    max_queue=st.integers(1, 16),
    max_in_flight=st.integers(1, 3),
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    mix=st.lists(callers, min_size=1, max_size=24),
    batching=batchings,
    failures=st.integers(0, 2),
)
async def test_every_caller_gets_its_own_rows_or_its_own_error(
    server: ModelServer, protocol: str, mix: list[Caller], batching: Batching, failures: int
) -> None:
    assert server.faults is not None
    server.faults.clear()
    if failures:
        # UNAVAILABLE on a few requests: retried for every caller of the request.
        server.faults.add(Fault(method="predict", error_rate=1.0, times=failures))
    client = Client(target_of(server, protocol), timeout=STEP, max_retries=3, batching=batching)
    inputs = [c.inputs(i) for i, c in enumerate(mix)]
    async with within(STEP * 3):
        # Warm: the callers' outcomes below depend on batching, not on the metadata fetch.
        await client.metadata(MODEL)
        tasks = [
            asyncio.create_task(
                client.predict(
                    MODEL,
                    {"x": x},
                    signature=c.signature,
                    timeout=1e-3 if c.tight else None,
                )
            )
            for c, x in zip(mix, inputs, strict=True)
        ]
        await after_started()
        for c, task in zip(mix, tasks, strict=True):
            if c.cancel:
                task.cancel()
        outcomes: list[Any] = await asyncio.gather(*tasks, return_exceptions=True)
        await client.close()
    for i, (c, x, outcome) in enumerate(zip(mix, inputs, outcomes, strict=True)):
        if c.cancel and isinstance(outcome, asyncio.CancelledError):
            continue
        if c.tight and isinstance(outcome, DeadlineExceededError):
            continue
        if c.tight and failures and isinstance(outcome, UnavailableError):
            continue  # no time left to retry: the retry rules give up for this caller
        if c.bad and c.signature == "picky":
            assert isinstance(outcome, InvalidArgumentError), (i, c, outcome)
            continue
        assert not isinstance(outcome, BaseException), (i, c, outcome)
        np.testing.assert_array_equal(outcome.output, x * 2, err_msg=f"caller {i}: {c}")
    stats = client.batching_stats()
    assert (stats.queued, stats.in_flight) == (0, 0)
    assert not batch_tasks()
