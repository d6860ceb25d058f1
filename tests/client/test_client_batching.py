"""MicroBatcher against the emulator over real sockets, gRPC and REST.

The models record the dimension 0 of every request they receive, so the tests see
exactly how the callers' rows were grouped into requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.client import STEP, target_of, within
from tfs_async.batching import BatchingError
from tfs_async.client import Client
from tfs_async.errors import (
    DeadlineExceededError,
    InvalidArgumentError,
    InvalidInputError,
    NotFoundError,
)
from tfs_async.testing import ModelServer, PythonModel, signature

MODEL = "rec"
Arrays = dict[str, npt.NDArray[Any]]


@dataclass
class Recorder:
    """What the models saw: dimension 0 of each request, per signature; a gate to hold answers."""

    sizes: dict[str, list[int]] = field(default_factory=dict)
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    gate: asyncio.Event = field(default_factory=asyncio.Event)

    def seen(self, name: str, rows: int) -> None:
        self.sizes.setdefault(name, []).append(rows)

    def model(self) -> PythonModel:
        async def double(t: Arrays) -> Arrays:
            self.seen("serving_default", len(t["x"]))
            return {"y": t["x"] * 2}

        async def pair(t: Arrays) -> Arrays:
            self.seen("pair", len(t["a"]))
            return {"sum": t["a"] + t["b"], "diff": t["a"] - t["b"]}

        async def echo(t: Arrays) -> Arrays:
            self.seen("strings", len(t["s"]))
            return {"s": t["s"]}

        async def total(t: Arrays) -> Arrays:
            self.seen("total", len(t["x"]))
            return {"total": np.asarray(t["x"].sum(), np.float32)}

        async def gated(t: Arrays) -> Arrays:
            self.seen("gated", len(t["x"]))
            self.entered.set()
            await self.gate.wait()
            return {"y": t["x"] * 2}

        matrix = ("DT_FLOAT", [-1, -1])
        return PythonModel(
            MODEL,
            {
                "serving_default": signature(double, inputs={"x": matrix}, outputs={"y": matrix}),
                "pair": signature(
                    pair,
                    inputs={"a": ("DT_INT64", [-1]), "b": ("DT_INT64", [-1])},
                    outputs={"sum": ("DT_INT64", [-1]), "diff": ("DT_INT64", [-1])},
                ),
                "strings": signature(
                    echo, inputs={"s": ("DT_STRING", [-1])}, outputs={"s": ("DT_STRING", [-1])}
                ),
                "total": signature(
                    total, inputs={"x": matrix}, outputs={"total": ("DT_FLOAT", [])}
                ),
                "gated": signature(gated, inputs={"x": matrix}, outputs={"y": matrix}),
            },
        )


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest_asyncio.fixture
async def bclient(rec: Recorder, protocol: str) -> AsyncIterator[Client]:
    """A client (no retries) of an emulator serving the recording model."""
    async with within(STEP):
        server = ModelServer([rec.model()])
        await server.start()
    try:
        async with Client(target_of(server, protocol), timeout=STEP, max_retries=0) as client:
            yield client
    finally:
        async with within(STEP):
            await server.stop()


def rows(caller: int, count: int, cols: int = 3) -> npt.NDArray[np.float32]:
    """``count`` rows unique to ``caller``: row r holds caller * 1000 + r."""
    column = np.arange(count, dtype=np.float32)[:, None] + caller * 1000
    return np.repeat(column, cols, axis=1)


def batch_tasks() -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if t.get_name().startswith("tfs_async.batching")}


def expected_batches(counts: list[int], max_batch_size: int) -> list[int]:
    """Greedy grouping in arrival order: a batch is sent before it would overflow."""
    sent: list[int] = []
    current = 0
    for count in counts:
        if count >= max_batch_size:
            sent.append(count)
            continue
        if current + count > max_batch_size:
            sent.append(current)
            current = 0
        current += count
        if current == max_batch_size:
            sent.append(current)
            current = 0
    if current:
        sent.append(current)
    return sent


async def test_concurrent_callers_get_exactly_their_rows_in_one_request(
    bclient: Client, rec: Recorder
) -> None:
    counts = list(range(1, 11))
    async with within(STEP), bclient.batcher(MODEL, max_batch_size=sum(counts)) as batcher:
        results = await asyncio.gather(
            *(batcher.predict({"x": rows(i, n)}) for i, n in enumerate(counts))
        )
    assert rec.sizes == {"serving_default": [55]}  # ten callers, one request
    for i, (n, result) in enumerate(zip(counts, results, strict=True)):
        assert set(result) == {"y"}
        np.testing.assert_array_equal(result["y"], rows(i, n) * 2)
        assert result["y"].dtype == np.float32
        assert result.model is not None
        assert result.model.name == MODEL


async def test_server_sees_fewer_requests_than_callers_and_max_batch_size_holds(
    bclient: Client, rec: Recorder
) -> None:
    async with within(STEP), bclient.batcher(MODEL, max_batch_size=8, max_delay=0) as batcher:
        results = await asyncio.gather(*(batcher.predict({"x": rows(i, 1)}) for i in range(30)))
    assert sorted(rec.sizes["serving_default"]) == [6, 8, 8, 8]  # 4 requests, 30 callers
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result["y"], rows(i, 1) * 2)


async def test_a_call_larger_than_max_batch_size_is_sent_alone(
    bclient: Client, rec: Recorder
) -> None:
    async with within(STEP), bclient.batcher(MODEL, max_batch_size=4, max_delay=0) as batcher:
        small, big = await asyncio.gather(
            batcher.predict({"x": rows(0, 2)}), batcher.predict({"x": rows(1, 9)})
        )
    assert sorted(rec.sizes["serving_default"]) == [2, 9]
    np.testing.assert_array_equal(small["y"], rows(0, 2) * 2)
    np.testing.assert_array_equal(big["y"], rows(1, 9) * 2)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    counts=st.lists(st.integers(1, 6), min_size=1, max_size=12),
    max_batch_size=st.integers(1, 10),
)
async def test_property_every_caller_gets_its_rows(
    bclient: Client, rec: Recorder, counts: list[int], max_batch_size: int
) -> None:
    rec.sizes.clear()
    batcher = bclient.batcher(MODEL, max_batch_size=max_batch_size, max_delay=0)
    async with within(STEP), batcher:
        results = await asyncio.gather(
            *(batcher.predict({"x": rows(i, n, cols=2)}) for i, n in enumerate(counts))
        )
    for i, (n, result) in enumerate(zip(counts, results, strict=True)):
        np.testing.assert_array_equal(result["y"], rows(i, n, cols=2) * 2)
    # All callers queue within one loop iteration, so the grouping is deterministic.
    assert sorted(rec.sizes["serving_default"]) == sorted(expected_batches(counts, max_batch_size))


async def test_lone_caller_is_sent_after_max_delay(bclient: Client, rec: Recorder) -> None:
    batcher = bclient.batcher(MODEL, max_batch_size=64, max_delay=0.02)
    async with within(STEP):
        result = await batcher.predict({"x": rows(7, 3)})
    np.testing.assert_array_equal(result["y"], rows(7, 3) * 2)
    assert rec.sizes == {"serving_default": [3]}
    assert not batch_tasks()
    await batcher.aclose()


async def test_single_unnamed_array_is_named_from_the_metadata(
    bclient: Client, rec: Recorder
) -> None:
    async with within(STEP), bclient.batcher(MODEL, max_batch_size=3) as batcher:
        a, b = await asyncio.gather(batcher.predict(rows(0, 1)), batcher.predict(rows(1, 2)))
    assert rec.sizes == {"serving_default": [3]}
    np.testing.assert_array_equal(a["y"], rows(0, 1) * 2)
    np.testing.assert_array_equal(b["y"], rows(1, 2) * 2)


async def test_multi_input_calls_merge_input_by_input(bclient: Client, rec: Recorder) -> None:
    calls = [
        {"a": np.array([1, 2], np.int64), "b": np.array([10, 20], np.int64)},
        # Same names in another order: still the same group.
        {"b": np.array([5], np.int64), "a": np.array([7], np.int64)},
    ]
    async with within(STEP), bclient.batcher(MODEL, signature="pair", max_batch_size=3) as b:
        first, second = await asyncio.gather(*(b.predict(c) for c in calls))
    assert rec.sizes == {"pair": [3]}
    np.testing.assert_array_equal(first["sum"], [11, 22])
    np.testing.assert_array_equal(first["diff"], [-9, -18])
    np.testing.assert_array_equal(second["sum"], [12])
    np.testing.assert_array_equal(second["diff"], [2])


async def test_incompatible_calls_go_in_separate_batches(
    bclient: Client, rec: Recorder, protocol: str
) -> None:
    calls: list[Any] = [
        {"x": rows(0, 2)},  # (n, 3) float32: one group
        {"x": rows(1, 1, cols=4)},  # other trailing shape
        {"x": rows(2, 3)},
        rows(3, 1),  # unnamed: other group
        {"x": rows(4, 2).astype(np.float64)},  # other dtype: its own batch, its own fate
    ]
    async with within(STEP), bclient.batcher(MODEL, max_delay=0.01) as batcher:
        results = await asyncio.gather(*(batcher.predict(c) for c in calls), return_exceptions=True)
    for i, n, cols in ((0, 2, 3), (1, 1, 4), (2, 3, 3), (3, 1, 3)):
        result = results[i]
        assert not isinstance(result, BaseException), result
        np.testing.assert_array_equal(result["y"], rows(i, n, cols) * 2)
    # float64 (numpy's default) takes the signature's float over both transports
    # (the client converts it for gRPC), in a batch of its own.
    float64 = results[4]
    assert not isinstance(float64, BaseException), float64
    np.testing.assert_array_equal(float64["y"], rows(4, 2) * 2)
    assert sorted(rec.sizes["serving_default"]) == [1, 1, 2, 5]


async def test_string_kinds_do_not_merge(bclient: Client, rec: Recorder) -> None:
    async with within(STEP), bclient.batcher(MODEL, signature="strings") as batcher:
        text, raw, longer = await asyncio.gather(
            batcher.predict({"s": np.array(["ab", "c"])}),
            batcher.predict({"s": np.array([b"xyz"])}),
            batcher.predict({"s": np.array(["longer text"])}),
        )
    # str arrays of any length merge; bytes are a batch of their own.
    assert sorted(rec.sizes["strings"]) == [1, 3]
    assert list(text["s"]) == [b"ab", b"c"]
    assert list(raw["s"]) == [b"xyz"]
    assert list(longer["s"]) == [b"longer text"]


async def test_non_batch_major_output_fails_every_caller(bclient: Client, rec: Recorder) -> None:
    async with within(STEP), bclient.batcher(MODEL, signature="total", max_batch_size=6) as b:
        results = await asyncio.gather(
            *(b.predict({"x": rows(i, 2)}) for i in range(3)), return_exceptions=True
        )
    assert rec.sizes == {"total": [6]}
    for error in results:
        assert isinstance(error, BatchingError)
        assert isinstance(error, InvalidArgumentError)
        assert error.output_name == "total"
        assert error.model is not None
        assert error.model.name == MODEL
        assert "not batch-major" in str(error)
        assert "'total'" in str(error)
    assert len({id(e) for e in results}) == 3  # each caller its own exception object


async def test_server_error_reaches_every_caller(bclient: Client) -> None:
    async with within(STEP), bclient.batcher("missing", max_batch_size=4) as batcher:
        results = await asyncio.gather(
            *(batcher.predict({"x": rows(i, 1)}) for i in range(4)), return_exceptions=True
        )
    assert all(type(e) is NotFoundError for e in results), results
    errors = [e for e in results if isinstance(e, NotFoundError)]
    assert len({id(e) for e in errors}) == 4
    # Copies of one batch error: same message and model, the original as cause.
    assert len({e.message for e in errors}) == 1
    assert all(e.model is not None and e.model.name == "missing" for e in errors)
    causes = {id(e.__cause__) for e in errors}
    assert len(causes) == 1
    assert isinstance(errors[0].__cause__, NotFoundError)


async def test_client_failure_reaches_every_caller(bclient: Client) -> None:
    batcher = bclient.batcher(MODEL, max_batch_size=2, max_delay=STEP * 10)
    first = asyncio.create_task(batcher.predict({"x": rows(0, 1)}))
    closer = asyncio.create_task(bclient.close())  # runs after the caller queued its rows
    second = asyncio.create_task(batcher.predict({"x": rows(1, 1)}))
    async with within(STEP):
        results = await asyncio.gather(first, second, closer, return_exceptions=True)
    assert all(isinstance(e, RuntimeError) for e in results[:2]), results
    assert "closed" in str(results[0])
    await batcher.aclose()


async def test_cancelled_caller_before_sending_is_dropped(bclient: Client, rec: Recorder) -> None:
    batcher = bclient.batcher(MODEL, max_batch_size=3, max_delay=STEP * 10)
    first = asyncio.create_task(batcher.predict({"x": rows(0, 1)}))
    second = asyncio.create_task(batcher.predict({"x": rows(1, 1)}))

    async def third() -> Any:
        # Tasks run in creation order: the two callers above have queued their rows.
        second.cancel()
        return await batcher.predict({"x": rows(2, 1)})

    last = asyncio.create_task(third())
    async with within(STEP):
        results = await asyncio.gather(first, second, last, return_exceptions=True)
    a, b, c = results
    assert isinstance(b, asyncio.CancelledError)
    assert not isinstance(a, BaseException)
    assert not isinstance(c, BaseException)
    np.testing.assert_array_equal(a["y"], rows(0, 1) * 2)
    np.testing.assert_array_equal(c["y"], rows(2, 1) * 2)
    assert rec.sizes == {"serving_default": [2]}  # the cancelled rows were not sent
    await batcher.aclose()


async def test_cancelled_caller_in_flight_does_not_hurt_others(
    bclient: Client, rec: Recorder
) -> None:
    batcher = bclient.batcher(MODEL, signature="gated", max_batch_size=3)
    tasks = [asyncio.create_task(batcher.predict({"x": rows(i, 1)})) for i in range(3)]
    async with within(STEP):
        await rec.entered.wait()
    tasks[1].cancel()
    rec.gate.set()
    async with within(STEP):
        results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[1], asyncio.CancelledError)
    for i in (0, 2):
        result = results[i]
        assert not isinstance(result, BaseException), result
        np.testing.assert_array_equal(result["y"], rows(i, 1) * 2)
    assert rec.sizes == {"gated": [3]}
    async with within(STEP):
        await batcher.aclose()
    assert not batch_tasks()


async def test_timeout_bounds_the_batch_call(bclient: Client, rec: Recorder) -> None:
    batcher = bclient.batcher(MODEL, signature="gated", max_batch_size=2, timeout=1.0)
    try:
        async with within(STEP):
            results = await asyncio.gather(
                *(batcher.predict({"x": rows(i, 1)}) for i in range(2)), return_exceptions=True
            )
    finally:
        rec.gate.set()  # the server's handler may still wait: let it finish
    assert all(isinstance(e, DeadlineExceededError) for e in results), results
    assert rec.sizes == {"gated": [2]}
    async with within(STEP):
        await batcher.aclose()


async def test_aclose_flushes_pending_then_refuses(bclient: Client, rec: Recorder) -> None:
    batcher = bclient.batcher(MODEL, max_batch_size=64, max_delay=STEP * 10)
    callers = [asyncio.create_task(batcher.predict({"x": rows(i, 2)})) for i in range(5)]
    closer = asyncio.create_task(batcher.aclose())  # created last: the callers queue first
    async with within(STEP):
        results = await asyncio.gather(*callers)
        await closer
    assert rec.sizes == {"serving_default": [10]}
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result["y"], rows(i, 2) * 2)
    assert batcher.closed
    with pytest.raises(RuntimeError, match="closed"):
        await batcher.predict({"x": rows(9, 1)})
    with pytest.raises(RuntimeError, match="closed"):
        async with batcher:
            pass
    await batcher.aclose()  # idempotent
    assert rec.sizes == {"serving_default": [10]}
    assert not batch_tasks()


async def test_no_tasks_left_after_many_batches(bclient: Client) -> None:
    async with within(STEP), bclient.batcher(MODEL, max_batch_size=5, max_delay=0) as batcher:
        await asyncio.gather(*(batcher.predict({"x": rows(i, 1 + i % 3)}) for i in range(40)))
        async with bclient.batcher("missing") as failing:
            await asyncio.gather(
                *(failing.predict({"x": rows(i, 1)}) for i in range(5)),
                return_exceptions=True,
            )
    assert not batch_tasks()


@pytest.mark.parametrize(
    ("inputs", "name", "words"),
    [
        ({"x": np.float32(1.0)}, "x", "scalar"),
        ({"x": np.zeros((0, 3), np.float32)}, "x", "no rows"),
        (np.zeros((0, 3), np.float32), None, "no rows"),
        (
            {"a": np.zeros(2, np.int64), "b": np.zeros(3, np.int64)},
            "b",
            "3 rows but input 'a' has 2",
        ),
        ({}, None, "at least one input"),
    ],
    ids=["scalar", "no-rows", "no-rows-unnamed", "rows-differ", "empty"],
)
async def test_bad_inputs_are_refused_before_queueing(
    bclient: Client, rec: Recorder, inputs: Any, name: str | None, words: str
) -> None:
    async with bclient.batcher(MODEL, signature="pair") as batcher:
        with pytest.raises(InvalidInputError, match=words) as caught:
            await batcher.predict(inputs)
    assert caught.value.input_name == name
    assert caught.value.model is not None
    assert caught.value.model.name == MODEL
    assert rec.sizes == {}  # nothing reached the server


async def test_bad_settings_are_refused() -> None:
    async with Client("grpc://127.0.0.1:1") as client:
        _refuse_bad_settings(client)


def _refuse_bad_settings(client: Client) -> None:
    with pytest.raises(ValueError, match="max_batch_size"):
        client.batcher(MODEL, max_batch_size=0)
    with pytest.raises(ValueError, match="max_delay"):
        client.batcher(MODEL, max_delay=-1)
    with pytest.raises(ValueError, match="timeout"):
        client.batcher(MODEL, timeout=0)
    with pytest.raises(InvalidInputError, match="not both"):
        client.batcher(MODEL, version=1, label="stable")
