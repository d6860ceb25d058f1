"""The observer interface: what a user's Observer is told, over both transports, real sockets."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tests.observability.recording import Recorder, predicts, target
from tests.support.client import STEP, within
from tests.support.harness import listeners
from tfs_async.batching import Batching
from tfs_async.client import Client
from tfs_async.errors import StatusCode, UnavailableError
from tfs_async.observe import Observer, Observers, split_target
from tfs_async.retry import RetryPolicy
from tfs_async.testing import Fault, FaultPlan, ServerCore

X = {"x": np.array([1.0, 2.0, 5.0], np.float32)}
QUICK = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, jitter=0.01)


def _failing(times: int | None) -> FaultPlan:
    plan = FaultPlan(seed=3)
    plan.add(Fault(method="predict", error_rate=1.0, code=StatusCode.UNAVAILABLE, times=times))
    return plan


async def test_a_retried_call_is_one_call_of_three_attempts(
    core: ServerCore, protocol: str
) -> None:
    recorder = Recorder()
    async with (
        listeners(core, faults=_failing(2)) as where,
        within(STEP),
        Client(
            target(protocol, where), timeout=STEP, max_retries=3, retry=QUICK, observer=recorder
        ) as client,
    ):
        await client.predict("half_plus_two", X)
    assert recorder.names("Predict") == [
        "call_started",
        "attempt_started",
        "attempt_ended",
        "retry_scheduled",
        "attempt_started",
        "attempt_ended",
        "retry_scheduled",
        "attempt_started",
        "attempt_ended",
        "call_ended",
    ]
    call = next(c for c in recorder.of("call_started") if c.method == "Predict")
    assert (call.protocol, call.server_address, call.service) == (
        protocol,
        "127.0.0.1",
        "tensorflow.serving.PredictionService",
    )
    assert call.server_port == (where.grpc_port if protocol == "grpc" else where.rest_port)
    assert call.model is not None
    assert call.model.name == "half_plus_two"
    assert call.attempts == 3
    attempts = [a for a in recorder.of("attempt_ended") if a.method == "Predict"]
    assert [a.attempt.number for a in attempts] == [1, 2, 3]
    assert [type(a.error) for a in attempts] == [UnavailableError, UnavailableError, type(None)]
    retries = [r.event for r in recorder.of("retry_scheduled")]
    assert [r.attempt for r in retries] == [2, 3]
    assert all(r.delay >= 0.01 and isinstance(r.error, UnavailableError) for r in retries)
    (ended,) = [e for e in recorder.of("call_ended") if e.method == "Predict"]
    assert ended.error is None


async def test_metadata_added_by_an_observer_goes_with_its_attempt_only(
    core: ServerCore, protocol: str
) -> None:
    async with (
        listeners(core, faults=_failing(2)) as where,
        within(STEP),
        Client(
            target(protocol, where),
            timeout=STEP,
            max_retries=3,
            retry=QUICK,
            metadata={"authorization": "Bearer t0k"},
            observer=Recorder(),
        ) as client,
    ):
        await client.predict("half_plus_two", X)
    sent = predicts(where.seen)
    assert [h.get("x-attempt") for h in sent] == ["1", "2", "3"]
    assert all(h.get("authorization") == "Bearer t0k" for h in sent)


async def test_a_refused_retry_is_reported_as_budget_exhausted(
    core: ServerCore, protocol: str
) -> None:
    recorder = Recorder()
    no_budget = RetryPolicy(initial_backoff=0.01, budget_ratio=0.0, budget_min_retries=0)
    async with (
        listeners(core, faults=_failing(None)) as where,
        within(STEP),
        Client(
            target(protocol, where),
            timeout=STEP,
            max_retries=3,
            retry=no_budget,
            observer=recorder,
        ) as client,
    ):
        with pytest.raises(UnavailableError):
            await client.predict("half_plus_two", X)
    assert recorder.names("Predict")[-2:] == ["budget_exhausted", "call_ended"]
    (refused,) = recorder.of("budget_exhausted")
    assert isinstance(refused.error, UnavailableError)
    assert recorder.of("retry_scheduled") == []
    (ended,) = [e for e in recorder.of("call_ended") if e.method == "Predict"]
    assert ended.error is refused.error


async def test_each_batch_sent_is_reported_with_its_rows_and_reason(core: ServerCore) -> None:
    recorder = Recorder()
    async with (
        listeners(core) as where,
        within(STEP),
        Client(
            target("grpc", where),
            timeout=STEP,
            observer=recorder,
            batching=Batching(max_batch_size=3, max_delay=STEP),
        ) as client,
    ):
        await asyncio.gather(
            client.predict("double", {"x": np.ones(1, np.float32)}),
            client.predict("double", {"x": np.ones(2, np.float32)}),
        )
    flushes = recorder.of("batch_flushed")
    assert [(f.rows, f.requests, f.reason) for f in flushes] == [(3, 2, "size")]
    assert all(f.model.name == "double" and f.queue_delay >= 0 for f in flushes)


async def test_waiting_for_a_pooled_http_connection_is_reported(core: ServerCore) -> None:
    recorder = Recorder()
    async with (
        listeners(core) as where,
        within(STEP),
        Client(target("http", where), timeout=STEP, pool_size=1, observer=recorder) as client,
    ):
        await asyncio.gather(*(client.status("double") for _ in range(3)))
    waits = recorder.of("pool_wait")
    assert len(waits) == 2
    assert all(w.protocol == "http" and w.acquired and w.seconds >= 0 for w in waits)
    assert {c.method for c in recorder.of("call_started")} == {"GetModelStatus"}


async def test_observers_fan_out_in_order(core: ServerCore) -> None:
    first, second = Recorder(), Recorder()
    async with (
        listeners(core) as where,
        within(STEP),
        Client(
            target("grpc", where), timeout=STEP, observer=Observers([first, Observer(), second])
        ) as client,
    ):
        await client.status("double")
    assert (
        first.names()
        == second.names()
        == [
            "call_started",
            "attempt_started",
            "attempt_ended",
            "call_ended",
        ]
    )
    assert where.seen[-1].get("x-attempt") == "1"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("grpc://localhost:8500", ("localhost", 8500)),
        ("http://127.0.0.1:8501", ("127.0.0.1", 8501)),
        ("https://[::1]:8501/", ("::1", 8501)),
        ("127.0.0.1:8500", ("127.0.0.1", 8500)),
        ("dns:///serving.example:8500", ("serving.example", 8500)),
        ("dns://8.8.8.8/serving.example:8500", ("serving.example", 8500)),
        ("ipv4:10.0.0.1:8500", ("10.0.0.1", 8500)),
        ("ipv4:10.0.0.1:8500,10.0.0.2:8500", (None, None)),
        ("unix:/tmp/serving.sock", (None, None)),
    ],
)
def test_the_server_address_and_port_come_from_the_target(
    target: str, expected: tuple[str | None, int | None]
) -> None:
    assert split_target(target) == expected
