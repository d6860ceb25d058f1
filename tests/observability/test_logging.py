"""The ``tfs_async`` loggers: retries, budget refusals and batches at DEBUG, never a payload."""

from __future__ import annotations

import asyncio
import logging

import numpy as np
import pytest

from tests.observability.recording import target
from tests.support.client import STEP, within
from tests.support.harness import listeners
from tfs_async.batching import Batching
from tfs_async.client import Client
from tfs_async.errors import StatusCode, UnavailableError
from tfs_async.retry import RetryPolicy
from tfs_async.testing import Fault, FaultPlan, ServerCore

TOKEN = "Bearer s3cr3t-t0k3n-9f8e"
VALUE = 1234.5678  # a recognisable tensor value
X = {"x": np.array([VALUE, VALUE], np.float32)}
QUICK = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, jitter=0.01)


def _client_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    # The emulator's own loggers (tfs_async.testing) are the server's, not the client's.
    return [
        r
        for r in caplog.records
        if r.name.startswith("tfs_async") and not r.name.startswith("tfs_async.testing")
    ]


def _texts(record: logging.LogRecord) -> str:
    return " ".join([record.getMessage(), repr(record.args), repr(record.__dict__)])


async def test_retries_refusals_and_batches_are_logged_without_payloads_or_credentials(
    core: ServerCore, protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tfs_async")
    plan = FaultPlan(seed=3)
    rule = plan.add(Fault(method="predict", error_rate=1.0, code=StatusCode.UNAVAILABLE, times=2))
    async with listeners(core, faults=plan) as where:
        url = target(protocol, where)
        async with (
            within(STEP),
            Client(
                url, timeout=STEP, max_retries=3, retry=QUICK, metadata={"authorization": TOKEN}
            ) as client,
        ):
            await client.predict("half_plus_two", X)
            batched = client.with_options(batching=Batching(max_batch_size=2, max_delay=STEP))
            await asyncio.gather(
                batched.predict("double", {"x": np.array([VALUE], np.float32)}),
                batched.predict("double", {"x": np.array([VALUE], np.float32)}),
            )
        rule.times = None  # now fail for good, with a budget that refuses the retry
        no_budget = RetryPolicy(budget_ratio=0.0, budget_min_retries=0)
        async with (
            within(STEP),
            Client(url, timeout=STEP, retry=no_budget, metadata={"authorization": TOKEN}) as spent,
        ):
            with pytest.raises(UnavailableError):
                await spent.predict("half_plus_two", X)
    records = _client_records(caplog)
    messages = [r.getMessage() for r in records]
    retries = [m for m in messages if m.startswith("retrying")]
    assert len(retries) == 2
    assert "UNAVAILABLE" in retries[0]
    assert "attempt 2" in retries[0]
    assert "attempt 3" in retries[1]
    assert "half_plus_two" in retries[1]
    assert any(m.startswith("retry budget spent") for m in messages)
    assert any("batch for" in m and "(size): 2 rows from 2 calls" in m for m in messages)
    for record in records:
        text = _texts(record)
        assert "s3cr3t" not in text, record.getMessage()
        assert str(VALUE) not in text, record.getMessage()
        assert "1234.5" not in text, record.getMessage()
    assert all(r.levelno <= logging.DEBUG for r in records)


async def test_successful_calls_log_nothing_at_info(
    core: ServerCore, protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tfs_async")
    async with (
        listeners(core) as where,
        within(STEP),
        Client(target(protocol, where), timeout=STEP) as client,
    ):
        for _ in range(3):
            await client.predict("half_plus_two", X)
        await client.status("half_plus_two")
    assert _client_records(caplog) == []
