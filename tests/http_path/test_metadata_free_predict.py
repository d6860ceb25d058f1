"""HTTP predict needs no metadata: against the emulator and a server that has none.

A REST predict is one request: it is sent and its answer decoded without the
model's metadata, so it works against servers that speak TF Serving's REST
predict API without its metadata route (here a KServe v1 style server). The
outputs are named and typed from the answer: a single unnamed output after the
answer's key (``outputs`` or ``predictions``) unless cached metadata names it,
decimals as float32, integers as int64. Only validate, cast (both work on the
signature) and a single unnamed input fetch the metadata; against such a server
they fail with a NotFoundError that says why the metadata was needed.
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
from tfs_async.errors import (
    InvalidArgumentError,
    InvalidInputError,
    NotFoundError,
    StatusCode,
    TFServingError,
)
from tfs_async.testing import Fault, FaultPlan, ModelServer, PythonModel, signature
from tfs_async.testing.half_plus_two import half_plus_two_model
from tfs_async.transport.base import RestFormat
from tfs_async.types import ModelSpec

X = [1.0, 2.0, 5.0]
COLUMN = [[1.0], [2.0], [5.0]]


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
    """The emulator with a fault plan, which counts every request it is asked."""
    async with within(STEP):
        server = ModelServer([half_plus_two_model(), _pair_model()], faults=FaultPlan())
        await server.start()
    try:
        yield server
    finally:
        async with within(STEP):
            await server.stop()


def _faults(server: ModelServer) -> FaultPlan:
    assert server.faults is not None
    return server.faults


def _forbid_metadata(server: ModelServer) -> Fault:
    """The emulator's metadata route answers 404 from now on, as a KServe v1 server's does."""
    return _faults(server).add(
        Fault(method="get_model_metadata", error_rate=1.0, code=StatusCode.NOT_FOUND)
    )


def _plain(result: dict[str, np.ndarray[Any, Any]]) -> dict[str, tuple[str, list[Any]]]:
    return {name: (str(value.dtype), value.tolist()) for name, value in result.items()}


async def test_one_request_per_predict_against_a_server_without_metadata(
    kserve: KServeV1,
) -> None:
    async with within(STEP), Client(kserve.url, timeout=STEP, rest_format="rows") as client:
        result = await client.predict("half_plus_two", {"x": np.array(X, np.float32)})
        pair = await client.predict("pair", {"a": [1.0, 0.0], "b": [2.0, 3.0]})
        again = await client.predict("half_plus_two", {"x": X})
    # A single unnamed output, no metadata known: named after the answer's key.
    assert _plain(result) == {"predictions": ("float32", [2.5, 3.0, 4.5])} == _plain(again)
    assert result.output.tolist() == [2.5, 3.0, 4.5]
    assert _plain(pair) == {"sum": ("float32", [3.0, 3.0]), "count": ("int64", [2, 1])}
    # Each predict is exactly one request: no metadata call before, none after.
    assert kserve.paths == [
        "/v1/models/half_plus_two:predict",
        "/v1/models/pair:predict",
        "/v1/models/half_plus_two:predict",
    ]


@pytest.mark.parametrize("rest_format", ["columns", "rows"])
async def test_one_request_per_predict_against_the_emulator(
    emulator: ModelServer, rest_format: str
) -> None:
    faults = _faults(emulator)
    async with within(STEP), Client(emulator.rest_url, timeout=STEP) as client:
        fmt = client.with_options(rest_format=rest_format)
        counts = []
        for call in (
            fmt.predict("half_plus_two", {"x": COLUMN}),
            fmt.predict("half_plus_two", {"x": np.array(COLUMN)}),
            fmt.predict("pair", {"a": [1.0], "b": [0.0]}, output_filter=["count"]),
            fmt.with_options(compress=True, max_retries=0).predict("pair", {"a": [1], "b": [2]}),
        ):
            before = faults.calls
            await call
            counts.append(faults.calls - before)
        # validate=True and cast=True work on the signature: a metadata request first.
        before = faults.calls
        checked = await fmt.with_options(validate=True).predict("half_plus_two", {"x": COLUMN})
        validated = faults.calls - before
        # ... cached since: later predicts are one request again, the output named by it.
        for options in ({"cast": True}, {}):
            before = faults.calls
            named = await fmt.with_options(**options).predict("half_plus_two", {"x": COLUMN})
            counts.append(faults.calls - before)
    assert counts == [1, 1, 1, 1, 1, 1]
    assert validated == 2
    assert list(checked) == list(named) == ["y"]


async def test_a_single_output_asked_for_by_name_without_metadata(
    kserve: KServeV1, emulator: ModelServer
) -> None:
    for url in (kserve.url, emulator.rest_url):
        async with within(STEP), Client(url, timeout=STEP, rest_format="rows") as client:
            result = await client.predict("half_plus_two", {"x": X}, output_filter=["y"])
        assert _plain(result) == {"y": ("float32", [2.5, 3.0, 4.5])}, url
    assert kserve.paths == ["/v1/models/half_plus_two:predict"]
    assert _faults(emulator).calls == 1


async def test_rest_format_per_client_copy_and_its_default(kserve: KServeV1) -> None:
    async with within(STEP), Client(kserve.url, timeout=STEP, max_retries=0) as client:
        # TF Serving's columnar form by default: this server accepts only rows.
        with pytest.raises(InvalidArgumentError, match="instances") as raised:
            await client.predict("half_plus_two", {"x": X})
        assert raised.value.http_status == 400
        rows = client.with_options(rest_format="rows")
        result = await rows.predict("half_plus_two", {"x": X})
    assert result["predictions"].tolist() == [2.5, 3.0, 4.5]
    assert kserve.metadata_requests == 0


def test_rest_format_is_checked() -> None:
    with pytest.raises(ValueError, match="rest_format"):
        Client("http://127.0.0.1:1", rest_format="instances")  # type: ignore[arg-type]


async def test_what_needs_metadata_says_why_against_a_server_without_it(
    kserve: KServeV1,
) -> None:
    async with within(STEP), Client(kserve.url, timeout=STEP, rest_format="rows") as client:
        # One unnamed input must be named from the signature: a metadata call.
        with pytest.raises(NotFoundError, match="name the single unnamed input") as single:
            await client.predict("half_plus_two", np.array(X, np.float32))
        with pytest.raises(
            NotFoundError, match=r"validate the inputs \(validate=True\)"
        ) as checked:
            await client.with_options(validate=True).predict("half_plus_two", {"x": X})
        with pytest.raises(NotFoundError, match=r"to its dtypes \(cast=True\)") as cast:
            await client.with_options(cast=True).predict("half_plus_two", {"x": X})
        with pytest.raises(NotFoundError) as asked:
            await client.metadata("half_plus_two")
        result = await client.predict("half_plus_two", {"x": X})
    for error in (single.value, checked.value, cast.value):
        assert error.http_status == 404
        assert error.model == ModelSpec("half_plus_two")
        assert "no TF Serving metadata route" in error.message
        # The server's own words are kept.
        assert "not found: /v1/models/half_plus_two/metadata" in error.message
    assert "give the inputs as a dict by name" in single.value.message
    assert "send without validate" in checked.value.message
    assert "send without cast" in cast.value.message
    # metadata() itself: the server's 404, typed, naming the model.
    assert asked.value.http_status == 404
    assert asked.value.model == ModelSpec("half_plus_two")
    assert asked.value.message == "not found: /v1/models/half_plus_two/metadata"
    assert result.output.tolist() == [2.5, 3.0, 4.5]
    # NOT_FOUND is not retried: one metadata request per failed call, none for predict.
    assert kserve.metadata_requests == 4
    assert kserve.paths[-1] == "/v1/models/half_plus_two:predict"


async def test_a_missing_model_under_validate_keeps_the_servers_words(
    emulator: ModelServer,
) -> None:
    async with within(STEP), Client(emulator.rest_url, timeout=STEP, validate=True) as client:
        with pytest.raises(NotFoundError, match="Servable not found") as raised:
            await client.predict("nope", {"x": X})
    assert raised.value.http_status == 404
    assert raised.value.model == ModelSpec("nope")


@pytest.mark.parametrize("rest_format", ["columns", "rows"])
async def test_emulator_without_metadata_answers_from_the_json(
    emulator: ModelServer, rest_format: str
) -> None:
    forbid = _forbid_metadata(emulator)
    async with within(STEP), Client(emulator.rest_url, timeout=STEP) as client:
        fmt = client.with_options(rest_format=rest_format)
        # Over REST the server reads JSON numbers into its own dtypes: no cast needed.
        one = await fmt.predict("half_plus_two", {"x": np.array(COLUMN)})
        pair = await fmt.predict("pair", {"a": np.array([1.0, 0.0]), "b": [2, 3]})
        picked = await fmt.predict("pair", {"a": [1.0], "b": [1.0]}, output_filter=["count"])
    key = "outputs" if rest_format == "columns" else "predictions"
    assert _plain(one) == {key: ("float32", [[2.5], [3.0], [4.5]])}
    assert _plain(pair) == {"sum": ("float32", [3.0, 3.0]), "count": ("int64", [2, 1])}
    assert _plain(picked) == {"count": ("int64", [2])}
    assert forbid.hits == 0  # never asked


@pytest.mark.parametrize("rest_format", ["columns", "rows"])
async def test_cached_metadata_names_the_single_output(
    emulator: ModelServer, rest_format: str
) -> None:
    async with within(STEP), Client(emulator.rest_url, timeout=STEP) as client:
        fmt = client.with_options(rest_format=rest_format)
        fresh = await fmt.predict("half_plus_two", {"x": COLUMN})
        await client.metadata("half_plus_two")  # cached for every copy of the client
        forbid = _forbid_metadata(emulator)  # and not asked again
        named = await fmt.predict("half_plus_two", {"x": COLUMN})
    key = "outputs" if rest_format == "columns" else "predictions"
    assert list(fresh) == [key]
    assert list(named) == ["y"]
    assert fresh.output.tolist() == named.output.tolist() == [[2.5], [3.0], [4.5]]
    assert fresh.output.dtype == named.output.dtype == np.float32
    assert forbid.hits == 0


async def test_names_do_not_change_when_the_metadata_ages(emulator: ModelServer) -> None:
    faults = _faults(emulator)
    # metadata_ttl=0: every cache entry is stale at once.
    async with within(STEP), Client(emulator.rest_url, timeout=STEP, metadata_ttl=0) as client:
        await client.metadata("half_plus_two")
        before = faults.calls
        named = await client.predict("half_plus_two", {"x": COLUMN})
        sent = faults.calls - before
        # Checking inputs wants fresh metadata: fetched again.
        before = faults.calls
        await client.with_options(validate=True).predict("half_plus_two", {"x": COLUMN})
        validated = faults.calls - before
        # A NOT_FOUND drops what the client knew of the model.
        with pytest.raises(NotFoundError):
            await client.predict("half_plus_two", {"x": COLUMN}, version=7)
        forgotten = await client.predict("half_plus_two", {"x": COLUMN})
    assert list(named) == ["y"]
    assert sent == 1
    assert validated == 2
    assert list(forgotten) == ["outputs"]


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


Answers = dict[str, Any]


async def _every_call(client: Client) -> Answers:
    """Predict (one and several outputs), classify, regress and metadata, as plain values."""
    one = await client.predict("half_plus_two", {"x": COLUMN})
    pair = await client.predict("pair", {"a": [1.5, 0.0], "b": [2.0, -3.0]})
    examples = [{"x": 1.0}, {"x": 4.0}]
    classified = await client.classify("half_plus_two", examples, signature="classify_x_to_y")
    regressed = await client.regress("half_plus_two", examples, signature="regress_x_to_y")
    try:
        metadata: Any = await client.metadata("half_plus_two")
    except TFServingError as error:
        metadata = (type(error).__name__, error.http_status)
    return {
        "single output name": next(iter(one)),
        "predict": (str(one.output.dtype), one.output.tolist()),
        "predict pair": _plain(pair),
        "classify": classified.classes,
        "regress": (str(regressed.values.dtype), regressed.values.tolist()),
        "metadata": metadata,
    }


async def test_same_answers_from_the_emulator_and_the_metadata_less_server(
    emulator: ModelServer, kserve: KServeV1
) -> None:
    answers: dict[str, Answers] = {}
    targets: list[tuple[str, str, RestFormat | None]] = [
        ("emulator grpc", target_of(emulator, "grpc"), None),
        ("emulator http columns", emulator.rest_url, "columns"),
        ("emulator http rows", emulator.rest_url, "rows"),
        ("kserve http rows", kserve.url, "rows"),
    ]
    for where, target, rest_format in targets:
        async with within(STEP), Client(target, timeout=STEP, rest_format=rest_format) as client:
            answers[where] = await _every_call(client)
    # The emulator again, its metadata route gone: what a KServe-style server answers.
    _forbid_metadata(emulator)
    async with within(STEP), Client(emulator.rest_url, timeout=STEP) as client:
        answers["emulator http, no metadata route"] = await _every_call(client)

    names = {where: a.pop("single output name") for where, a in answers.items()}
    metadata = {where: a.pop("metadata") for where, a in answers.items()}
    reference = answers["emulator grpc"]
    assert reference["predict"] == ("float32", [[2.5], [3.0], [4.5]])
    assert reference["predict pair"] == {
        "sum": ("float32", [3.5, -3.0]),
        "count": ("int64", [2, 1]),
    }
    assert reference["classify"] == [[("", 2.5)], [("", 4.0)]]
    assert reference["regress"] == ("float32", [2.5, 4.0])
    for where, answer in answers.items():
        assert answer == reference, where
    # gRPC names the single output; REST without metadata after the answer's key.
    assert names == {
        "emulator grpc": "y",
        "emulator http columns": "outputs",
        "emulator http rows": "predictions",
        "kserve http rows": "predictions",
        "emulator http, no metadata route": "outputs",
    }
    # The metadata: the same signatures over both transports; a typed 404 where there is none.
    assert metadata["emulator grpc"] == metadata["emulator http columns"]
    assert metadata["emulator grpc"].signature().outputs["y"].dtype == "DT_FLOAT"
    assert metadata["kserve http rows"] == ("NotFoundError", 404)
    assert metadata["emulator http, no metadata route"] == ("NotFoundError", 404)
