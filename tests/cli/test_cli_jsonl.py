"""``predict --jsonl``'s row pipeline against the emulator over real sockets, both transports."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import pytest_asyncio

from tests.support.cli import PROTOCOLS, within
from tests.support.cli_models import build
from tfs_async.client import Client
from tfs_async.commands.jsonl import predict_rows, read_rows, run_jsonl
from tfs_async.errors import InvalidArgumentError
from tfs_async.testing import ModelServer, PythonModel, signature

STEP = 30.0


def _picky(t: dict[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[Any]]:
    # Refuses a whole request when one of its rows is negative, as a TF assert op would.
    if (t["x"] < 0).any():
        raise InvalidArgumentError("x must be >= 0")
    return {"y": t["x"] + 1, "n": np.full((len(t["x"]),), len(t["x"]), np.float32)}


def picky() -> PythonModel:
    sig = signature(
        _picky,
        inputs={"x": ("DT_FLOAT", [-1])},
        outputs={"y": ("DT_FLOAT", [-1]), "n": ("DT_FLOAT", [-1])},
    )
    return PythonModel("picky", {"serving_default": sig})


@pytest_asyncio.fixture
async def client(request: pytest.FixtureRequest) -> AsyncIterator[Client]:
    async with within(STEP):
        server = ModelServer([*build(), picky()])
        await server.start()
    try:
        protocol = request.param
        target = f"grpc://{server.grpc_target}" if protocol == "grpc" else server.rest_url
        async with Client(target, timeout=STEP, max_retries=0, cast=True, validate=True) as c:
            yield c
    finally:
        async with within(STEP):
            await server.stop()


over_both = pytest.mark.parametrize("client", PROTOCOLS, indirect=True)


@over_both
async def test_reads_at_most_max_in_flight_rows_ahead_and_keeps_order(client: Client) -> None:
    taken = 0

    def rows() -> Iterator[dict[str, npt.NDArray[Any]]]:
        nonlocal taken
        for i in range(300):
            taken += 1
            yield {"x": np.array([[i, i]], np.float32)}

    answered = 0
    async with within(STEP):
        async for outcome in predict_rows(
            client, "scale", rows(), max_batch_size=16, max_in_flight=32
        ):
            assert not isinstance(outcome, Exception), outcome
            assert outcome["y"].tolist() == [2 * answered + 1] * 2
            answered += 1
            assert taken - answered <= 32
    assert answered == taken == 300


@over_both
async def test_rows_in_flight_together_share_requests(client: Client) -> None:
    rows = [{"x": np.array([[i, 0]], np.float32)} for i in range(10)]
    async with within(STEP):
        outcomes = [o async for o in predict_rows(client, "scale", rows, max_batch_size=64)]
    # Each answer says how many rows its request carried: ten rows, at most two requests
    # (the row that fetched the metadata may go first, alone).
    sizes = [float(o["n"][0]) for o in outcomes if not isinstance(o, Exception)]
    assert len(sizes) == 10
    assert round(sum(1 / n for n in sizes)) <= 2


@over_both
async def test_one_bad_row_does_not_fail_its_neighbours(client: Client) -> None:
    values = [1.0, 2.0, -1.0, 3.0, 4.0]
    rows = [{"x": np.array([v], np.float32)} for v in values]
    async with within(STEP):
        outcomes = [o async for o in predict_rows(client, "picky", rows)]
    bad = outcomes[2]
    assert isinstance(bad, InvalidArgumentError)
    assert "x must be >= 0" in bad.message
    good = [o for i, o in enumerate(outcomes) if i != 2]
    assert [float(o["y"]) for o in good if not isinstance(o, Exception)] == [2.0, 3.0, 4.0, 5.0]


@over_both
async def test_run_jsonl_writes_one_answer_line_per_input_line(client: Client) -> None:
    source = io.StringIO('{"x": [1, 2]}\n\n{"x": [3, 4]}\n[1, 2]\n{"x": [[1, 2]]}\n')
    sink = io.StringIO()
    async with within(STEP):
        summary = await run_jsonl(
            client,
            "scale",
            source,
            sink,
            check=None,
            version=None,
            label=None,
            signature=None,
            output_filter=["y"],
            max_batch_size=8,
            max_in_flight=4,
            progress=False,
        )
    answers = [json.loads(line) for line in sink.getvalue().splitlines()]
    assert answers[0] == {"y": [3.0, 5.0]}
    assert answers[1] == {"error": "empty line", "code": "INVALID_ARGUMENT", "line": 2}
    assert answers[2] == {"y": [7.0, 9.0]}
    assert answers[3]["line"] == 4
    assert "JSON object" in answers[3]["error"]
    assert answers[4]["line"] == 5
    assert "'x'" in answers[4]["error"]
    assert (summary.rows, summary.failed) == (5, 3)


def test_read_rows_adds_the_batch_dimension() -> None:
    [row] = list(read_rows(['{"x": [1.5, 2], "s": "a"}']))
    assert not isinstance(row, Exception)
    assert row["x"].shape == (1, 2)
    assert row["s"].tolist() == [b"a"]


@over_both
async def test_string_outputs_come_back_as_json_strings(client: Client) -> None:
    source = io.StringIO('{"s": "a", "k": 1}\n{"s": {"b64": "/w=="}, "k": 2}\n')
    sink = io.StringIO()
    async with within(STEP):
        summary = await run_jsonl(
            client,
            "tagger",
            source,
            sink,
            check=None,
            version=None,
            label=None,
            signature=None,
            output_filter=[],
            max_batch_size=8,
            max_in_flight=4,
            progress=False,
        )
    assert summary.failed == 0
    answers = [json.loads(line) for line in sink.getvalue().splitlines()]
    assert answers == [{"k": 3, "out": "<a>"}, {"k": 6, "out": {"b64": "PP8+"}}]
