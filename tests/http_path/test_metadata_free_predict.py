"""HTTP predict needs no metadata: against the emulator and a server that has none.

A REST predict uses the model's metadata when the server has it (a single unnamed
output gets its signature name, outputs their declared dtypes, as over gRPC). A
server that speaks TF Serving's predict API without its metadata route (here a
KServe v1 style server) is asked once per model: once a predict has answered, the
client stops asking and names and types the outputs from the answer alone. Only
validation and a single unnamed input cannot do without the metadata.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
import pytest_asyncio

from tests.support.client import STEP, target_of, within
from tests.support.kserve_v1 import KServeV1
from tfs_async import Client
from tfs_async.errors import InvalidArgumentError, InvalidInputError, NotFoundError, StatusCode
from tfs_async.testing import Fault, FaultPlan, ModelServer, PythonModel, signature
from tfs_async.testing.half_plus_two import half_plus_two_model

X = [1.0, 2.0, 5.0]


def _pair_model() -> PythonModel:
    """The emulator's twin of KServeV1's ``pair``: a, b -> sum (float), count (int64)."""
    return PythonModel(
        "pair",
        {
            "serving_default": signature(
                lambda t: {
                    "sum": (t["a"] + t["b"]).astype(np.float32),
                    "count": (t["a"] != 0).astype(np.int64) + (t["b"] != 0).astype(np.int64),
                },
                inputs={"a": ("DT_FLOAT", [-1]), "b": ("DT_FLOAT", [-1])},
                outputs={"sum": ("DT_FLOAT", [-1]), "count": ("DT_INT64", [-1])},
            )
        },
    )


@pytest_asyncio.fixture
async def kserve() -> AsyncIterator[KServeV1]:
    async with within(STEP), KServeV1() as server:
        yield server


@pytest_asyncio.fixture
async def emulator() -> AsyncIterator[ModelServer]:
    """The emulator, whose metadata route fails every call: a metadata call would show."""
    async with within(STEP):
        server = ModelServer([half_plus_two_model(), _pair_model()], faults=FaultPlan())
        await server.start()
    try:
        yield server
    finally:
        async with within(STEP):
            await server.stop()


def _forbid_metadata(server: ModelServer) -> Fault:
    assert server.faults is not None
    return server.faults.add(
        Fault(method="get_model_metadata", error_rate=1.0, code=StatusCode.NOT_FOUND)
    )


def _plain(result: dict[str, np.ndarray[Any, Any]]) -> dict[str, tuple[str, list[Any]]]:
    return {name: (str(value.dtype), value.tolist()) for name, value in result.items()}


async def test_rows_against_a_server_without_metadata(kserve: KServeV1) -> None:
    async with within(STEP), Client(kserve.url, timeout=STEP, rest_format="rows") as client:
        result = await client.predict("half_plus_two", {"x": np.array(X, np.float32)})
        pair = await client.predict("pair", {"a": [1.0, 0.0], "b": [2.0, 3.0]})
        again = await client.predict("half_plus_two", {"x": np.array(X, np.float32)})
    # A single unnamed output, no metadata known: named after the answer's key.
    assert _plain(result) == {"predictions": ("float32", [2.5, 3.0, 4.5])} == _plain(again)
    assert _plain(pair) == {"sum": ("float32", [3.0, 3.0]), "count": ("int64", [2, 1])}
    # Asked once per model; after a predict answered, never again.
    assert kserve.paths == [
        "/v1/models/half_plus_two/metadata",
        "/v1/models/half_plus_two:predict",
        "/v1/models/pair/metadata",
        "/v1/models/pair:predict",
        "/v1/models/half_plus_two:predict",
    ]


async def test_rest_format_per_client_copy_and_its_default(kserve: KServeV1) -> None:
    async with within(STEP), Client(kserve.url, timeout=STEP, max_retries=0) as client:
        # TF Serving's columnar form by default: this server accepts only rows.
        with pytest.raises(InvalidArgumentError, match="instances") as raised:
            await client.predict("half_plus_two", {"x": X})
        assert raised.value.http_status == 400
        rows = client.with_options(rest_format="rows")
        result = await rows.predict("half_plus_two", {"x": X})
    assert result["predictions"].tolist() == [2.5, 3.0, 4.5]
    # The failed predict did not prove the metadata route missing: asked again.
    assert kserve.metadata_requests == 2


def test_rest_format_is_checked() -> None:
    with pytest.raises(ValueError, match="rest_format"):
        Client("http://127.0.0.1:1", rest_format="instances")  # type: ignore[arg-type]


async def test_what_still_needs_metadata_says_so(kserve: KServeV1) -> None:
    async with within(STEP), Client(kserve.url, timeout=STEP, rest_format="rows") as client:
        # One unnamed input must be named from the signature: a metadata call.
        with pytest.raises(NotFoundError):
            await client.predict("half_plus_two", np.array(X, np.float32))
        with pytest.raises(NotFoundError):
            await client.with_options(validate=True).predict("half_plus_two", {"x": X})
        await client.predict("half_plus_two", {"x": X})
        # Known to have no metadata now, but these cannot do without it.
        with pytest.raises(NotFoundError):
            await client.predict("half_plus_two", np.array(X, np.float32))
    assert kserve.metadata_requests == 4


@pytest.mark.parametrize("rest_format", ["columns", "rows"])
async def test_emulator_without_metadata_answers_from_the_json(
    emulator: ModelServer, rest_format: str
) -> None:
    # The emulator's metadata route answers 404, as a KServe-style server's does.
    forbid = _forbid_metadata(emulator)
    async with within(STEP), Client(emulator.rest_url, timeout=STEP) as client:
        fmt = client.with_options(rest_format=rest_format)
        # cast too: over REST the server reads JSON numbers into its own dtypes.
        casting = fmt.with_options(cast=True)
        one = await casting.predict("half_plus_two", {"x": [[1.0], [2.0], [5.0]]})
        pair = await fmt.predict("pair", {"a": np.array([1.0, 0.0]), "b": [2, 3]})
        picked = await fmt.predict("pair", {"a": [1.0], "b": [1.0]}, output_filter=["count"])
    key = "outputs" if rest_format == "columns" else "predictions"
    assert _plain(one) == {key: ("float32", [[2.5], [3.0], [4.5]])}
    assert _plain(pair) == {"sum": ("float32", [3.0, 3.0]), "count": ("int64", [2, 1])}
    assert _plain(picked) == {"count": ("int64", [2])}
    assert forbid.hits == 2  # once per model


async def test_metadata_names_the_single_output_when_the_server_has_it(
    emulator: ModelServer,
) -> None:
    async with within(STEP), Client(emulator.rest_url, timeout=STEP) as client:
        first = await client.predict("half_plus_two", {"x": [[1.0]]})
        forbid = _forbid_metadata(emulator)  # cached now: not asked again
        rows = await client.with_options(rest_format="rows").predict(
            "half_plus_two", {"x": [[1.0]]}
        )
    assert list(first) == ["y"] == list(rows)
    assert first["y"].tolist() == [[2.5]] == rows["y"].tolist()
    assert forbid.hits == 0


@pytest.mark.parametrize("protocol", ["grpc", "http"])
async def test_output_filter_errors_match_across_transports(
    emulator: ModelServer, protocol: str
) -> None:
    async with within(STEP), Client(target_of(emulator, protocol), timeout=STEP) as client:
        inputs = {"a": [1.0], "b": [1.0]}
        with pytest.raises(InvalidArgumentError) as unknown:
            await client.predict("pair", inputs, output_filter=["nope"])
        with pytest.raises(InvalidArgumentError, match="duplicate output tensor alias: sum"):
            await client.predict("pair", inputs, output_filter=["sum", "sum"])
    assert not isinstance(unknown.value, InvalidInputError)
    assert "output tensor alias not found in signature: nope" in unknown.value.message
    assert "{count,sum}" in unknown.value.message


async def test_same_answers_from_the_emulator_and_the_metadata_less_server(
    emulator: ModelServer, kserve: KServeV1
) -> None:
    answers = []
    for url in (emulator.rest_url, kserve.url):
        async with within(STEP), Client(url, timeout=STEP, rest_format="rows") as client:
            one = await client.predict("half_plus_two", {"x": [[1.0], [2.0], [5.0]]})
            pair = await client.predict("pair", {"a": [1.5, 0.0], "b": [2.0, -3.0]})
            answers.append((_plain(one), _plain(pair)))
    (tfs_one, tfs_pair), (kserve_one, kserve_pair) = answers
    assert tfs_pair == kserve_pair
    # The single output: named from the metadata where there is some, else the default.
    assert tfs_one == {"y": ("float32", [[2.5], [3.0], [4.5]])}
    assert kserve_one == {"predictions": tfs_one["y"]}
