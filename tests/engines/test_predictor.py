"""TFServingPredictor called as Ray calls it (``await predictor(batch)``), without Ray itself."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import pytest_asyncio

from tests.engines.conftest import ROWS, examples_env, expected_y, rows, within
from tfs_async import InvalidInputError, NotFoundError
from tfs_async.ray import TFServingPredictor
from tfs_async.testing import ModelServer, ModelServerProcess, PythonModel, signature

STEP = 10.0


class Gate:
    """Holds each request at the server until the test lets one through; counts arrivals."""

    def __init__(self) -> None:
        self.arrived = 0
        self.changed = asyncio.Condition()
        self.permits = asyncio.Semaphore(0)

    async def model(self, t: dict[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[Any]]:
        async with self.changed:
            self.arrived += 1
            self.changed.notify_all()
        await self.permits.acquire()
        return {"y": (t["x"] * 0.5 + 2).astype(np.float32)}


@pytest_asyncio.fixture
async def gate() -> Gate:
    return Gate()


@pytest_asyncio.fixture
async def server(gate: Gate) -> AsyncIterator[ModelServer]:
    async def half_plus_two(t: dict[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[Any]]:
        y = (t["x"] * 0.5 + 2).astype(np.float32)
        return {"y": y, "total": y.sum(axis=1, dtype=np.float32)}

    models = [
        PythonModel(
            "half_plus_two",
            {
                "serving_default": signature(
                    half_plus_two,
                    inputs={"x": ("DT_FLOAT", [-1, 3])},
                    outputs={"y": ("DT_FLOAT", [-1, 3]), "total": ("DT_FLOAT", [-1])},
                )
            },
        ),
        PythonModel(
            "gated",
            {
                "serving_default": signature(
                    gate.model,
                    inputs={"x": ("DT_FLOAT", [-1, 3])},
                    outputs={"y": ("DT_FLOAT", [-1, 3])},
                )
            },
        ),
    ]
    async with within(STEP), ModelServer(models) as srv:
        yield srv


@pytest.fixture(params=["grpc", "http"])
def target(request: pytest.FixtureRequest, server: ModelServer) -> str:
    return f"grpc://{server.grpc_target}" if request.param == "grpc" else server.rest_url


async def test_rows_come_back_beside_their_inputs(target: str) -> None:
    x = rows(1000)
    ids = np.arange(1000) * 7
    predictor = TFServingPredictor(target, "half_plus_two", request_batch_size=64, timeout=STEP)
    try:
        async with within(STEP * 3):
            out = await predictor({"id": ids, "x": x})
    finally:
        await predictor.aclose()
    assert sorted(out) == ["id", "total", "x", "y"]
    np.testing.assert_array_equal(out["id"], ids)
    np.testing.assert_array_equal(out["x"], x)
    np.testing.assert_allclose(out["y"], expected_y(x), rtol=1e-5)
    np.testing.assert_allclose(out["total"], expected_y(x).sum(axis=1), rtol=1e-5)


async def test_a_column_of_row_arrays_and_renamed_outputs(target: str) -> None:
    x = rows(10)
    column = np.empty(10, object)  # what Ray hands over for a column of lists
    column[:] = [list(row) for row in x]
    predictor = TFServingPredictor(
        target, "half_plus_two", inputs={"features": "x"}, outputs={"y": "pred"}, timeout=STEP
    )
    try:
        async with within(STEP):
            out = await predictor({"features": column})
    finally:
        await predictor.aclose()
    assert sorted(out) == ["features", "pred"]
    np.testing.assert_allclose(out["pred"], expected_y(x), rtol=1e-5)


async def test_requests_in_flight_are_bounded(server: ModelServer, gate: Gate) -> None:
    predictor = TFServingPredictor(
        f"grpc://{server.grpc_target}",
        "gated",
        request_batch_size=10,
        max_in_flight=2,
        timeout=STEP,
    )

    def more_than(n: int) -> Callable[[], bool]:
        return lambda: gate.arrived > n

    try:
        async with within(STEP * 3):
            call = asyncio.create_task(predictor({"x": rows(100)}))  # ten requests
            async with gate.changed:
                await gate.changed.wait_for(more_than(1))
            # Two held at the server: a third must not arrive while they are held. (A
            # bounded wait for what must not happen: it cannot fail a correct predictor.)
            with pytest.raises(asyncio.TimeoutError):
                async with within(0.5), gate.changed:
                    await gate.changed.wait_for(more_than(2))
            assert gate.arrived == 2
            for _ in range(10):
                gate.permits.release()
            out = await call
    finally:
        await predictor.aclose()
    assert gate.arrived == 10
    np.testing.assert_allclose(out["y"], expected_y(rows(100)), rtol=1e-5)


async def test_bad_batches_raise_typed_errors(target: str) -> None:
    predictor = TFServingPredictor(target, "half_plus_two", timeout=STEP)
    ragged = np.empty(3, object)
    ragged[:] = [np.zeros(3, np.float32), np.zeros(4, np.float32), np.zeros(3, np.float32)]
    try:
        async with within(STEP):
            with pytest.raises(InvalidInputError, match=r"column 'x': row 1 has shape \(4,\)"):
                await predictor({"x": ragged})
            with pytest.raises(InvalidInputError, match="no column 'x'"):
                await predictor({"features": rows(2)})
            with pytest.raises(InvalidInputError, match="would replace the batch's column 'y'"):
                await predictor({"x": rows(2), "y": rows(2)})
    finally:
        await predictor.aclose()
    missing = TFServingPredictor(target, "no_such_model", timeout=STEP)
    try:
        async with within(STEP):
            with pytest.raises(NotFoundError, match="no_such_model"):
                await missing({"x": rows(2)})
    finally:
        await missing.aclose()


def test_arguments_are_checked_when_built() -> None:
    with pytest.raises(ValueError, match="max_in_flight"):
        TFServingPredictor("grpc://127.0.0.1:1", "m", max_in_flight=0)
    with pytest.raises(ValueError, match="version"):
        TFServingPredictor("grpc://127.0.0.1:1", "m", version=1, label="stable")


def test_the_asyncio_json_lines_example(tmp_path: Path) -> None:
    import asyncio_jsonl

    with ModelServerProcess(
        python_models=["pipeline_models:build"], env=examples_env(), startup_timeout=STEP * 6
    ) as srv:
        x = rows(ROWS)
        source = tmp_path / "rows.jsonl"
        source.write_text(
            "".join(json.dumps({"id": i, "x": x[i].tolist()}) + "\n" for i in range(ROWS))
        )
        for target in (f"grpc://{srv.grpc_target}", srv.rest_url):
            output = tmp_path / "predictions.jsonl"
            written = asyncio_jsonl.run(
                [f"--target={target}", f"--input={source}", f"--output={output}"]
            )
            lines = [json.loads(line) for line in output.read_text().splitlines()]
            assert written == len(lines) == ROWS
            assert [line["id"] for line in lines] == list(range(ROWS))  # input order
            y = np.array([line["y"] for line in lines], np.float32)
            np.testing.assert_allclose(y, expected_y(x), rtol=1e-5)
