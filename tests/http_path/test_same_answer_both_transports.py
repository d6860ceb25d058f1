"""One input, one answer: every dtype and input form gives the same result over gRPC and HTTP.

The rule (README, "Inputs"): plain Python values and numpy's default float64/int64
arrays take the signature's dtype (over gRPC the client converts them; over REST
the server reads the JSON numbers into it); other numpy arrays keep their dtype.
What one transport refuses, the other refuses with the same error class.

Over HTTP each form is sent twice: by a client with the model's metadata cached
(the answer then has the signature's dtypes, exactly as over gRPC) and by one
without, which sends one request per predict and types the answer from the JSON
(README, "Outputs over REST"): same values, floats as float32, integers as int64.
cast and validate fetch the metadata (they work on the signature): the same
answer as over gRPC, dtype included.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
import pytest_asyncio

from tests.support.client import STEP, within
from tfs_async import Client
from tfs_async.errors import InvalidInputError, TFServingError
from tfs_async.testing import FaultPlan, ModelServer, PythonModel, signature
from tfs_async.testing.half_plus_two import half_plus_two_model

# Every dtype both TF Serving APIs carry (REST has no half, bfloat16, complex nor uint16).
DTYPES = {
    "DT_FLOAT": np.float32,
    "DT_DOUBLE": np.float64,
    "DT_INT8": np.int8,
    "DT_INT16": np.int16,
    "DT_INT32": np.int32,
    "DT_INT64": np.int64,
    "DT_UINT8": np.uint8,
    "DT_UINT32": np.uint32,
    "DT_UINT64": np.uint64,
    "DT_BOOL": np.bool_,
    "DT_STRING": np.object_,
}

# The input forms users pass, numbers small enough for every dtype.
FORMS: dict[str, Any] = {
    "python ints": [1, 2, 5],
    "python floats": [1.0, 2.0, 5.0],
    "python nested floats": [[1.0], [2.0], [5.0]],
    "python int scalar": 3,
    "python float scalar": 3.0,
    "python bools": [True, False],
    "python str": ["a", "bc"],
    "python bytes": [b"a", b"\xff"],
    "float64 array": np.array([1.0, 2.0, 5.0]),
    "int64 array": np.array([1, 2, 5]),
    "float32 array": np.array([1.0, 2.0, 5.0], np.float32),
    "int32 array": np.array([1, 2, 5], np.int32),
}


def _identity_model() -> PythonModel:
    """One identity signature per dtype, named after it: y = x, any shape."""
    return PythonModel(
        "identity",
        {
            name.lower(): signature(
                lambda t: {"y": t["x"]}, inputs={"x": name}, outputs={"y": name}
            )
            for name in DTYPES
        },
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[ModelServer]:
    async with within(STEP):
        # A fault plan without rules: it counts the requests the server is sent.
        srv = ModelServer([_identity_model(), half_plus_two_model()], faults=FaultPlan())
        await srv.start()
    try:
        yield srv
    finally:
        async with within(STEP):
            await srv.stop()


Outcome = tuple[str, str, str, Any]


async def _outcome(client: Client, dtype_name: str, value: Any) -> Outcome:
    try:
        async with within(STEP):
            result = await client.predict("identity", {"x": value}, signature=dtype_name.lower())
    except TFServingError as error:
        # InvalidInputError (the client's) counts as the server's INVALID_ARGUMENT.
        return ("error", error.code.name, "", None)
    (name,) = result
    return ("ok", name, str(result.output.dtype), result.output.tolist())


def _from_json(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """The dtype a REST answer is given without metadata (decode_predict_body's rule)."""
    return np.dtype({"f": np.float32, "i": np.int64, "u": np.int64}.get(dtype.kind, dtype))


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("options", [{}, {"cast": True}, {"validate": True}], ids=str)
@pytest.mark.parametrize("dtype_name", list(DTYPES))
async def test_every_form_gets_the_same_answer_over_both_transports(
    server: ModelServer, dtype_name: str, options: dict[str, bool]
) -> None:
    cast, validate = options.get("cast", False), options.get("validate", False)

    def client(target: str) -> Client:
        return Client(target, timeout=STEP, max_retries=0, cast=cast, validate=validate)

    grpc_client = client(f"grpc://{server.grpc_target}")
    http_client = client(server.rest_url)  # fetches metadata only for cast or validate
    cached_client = client(server.rest_url)
    faults = server.faults
    assert faults is not None
    wanted = np.dtype(DTYPES[dtype_name])
    async with grpc_client, http_client, cached_client:
        async with within(STEP):
            await cached_client.metadata("identity")
        for form, value in FORMS.items():
            over_grpc = await _outcome(grpc_client, dtype_name, value)
            over_cached = await _outcome(cached_client, dtype_name, value)
            sent = faults.calls
            over_http = await _outcome(http_client, dtype_name, value)
            sent = faults.calls - sent
            if not options:
                assert sent == 1, (form, dtype_name)  # the predict alone
            typed = isinstance(value, np.ndarray) and form not in ("float64 array", "int64 array")
            if typed and not options and value.dtype != wanted:
                # A dtype the caller chose is sent as it is: gRPC's typed tensor is
                # refused, REST's JSON has only numbers (cast=True: same everywhere).
                assert over_grpc == ("error", "INVALID_ARGUMENT", "", None), (form, dtype_name)
                continue
            # With the metadata cached: the very same answer, dtype included.
            assert over_grpc == over_cached, (form, dtype_name, options)
            # Without: the same outcome and values, the dtype from the JSON (cast and
            # validate fetched the metadata: the signature's).
            status, name, dtype, values = over_grpc
            if status == "ok" and not options:
                # The single output named after the answer's key.
                name, dtype = "outputs", str(_from_json(wanted))
            assert over_http == (status, name, dtype, values), (form, dtype_name, options)
            if over_grpc[0] == "ok":
                assert over_grpc[1:3] == ("y", str(wanted)), (form, dtype_name)
            if form.startswith("python") or form in ("float64 array", "int64 array"):
                # The rule: numbers take the signature's numeric dtype.
                numbers = form.endswith(("ints", "int scalar", "int64 array"))
                floats = "float" in form and "32" not in form
                if (numbers and wanted.kind in "iuf") or (floats and wanted.kind == "f"):
                    assert over_grpc[0] == "ok", (form, dtype_name, over_grpc)


@pytest.mark.asyncio(loop_scope="module")
async def test_the_issue_example_list_works_over_grpc(server: ModelServer) -> None:
    # [1.0, 2.0, 5.0] was sent as DT_DOUBLE over gRPC and refused; REST always took it.
    async with Client(f"grpc://{server.grpc_target}", timeout=STEP) as client, within(STEP):
        result = await client.predict("identity", {"x": [1.0, 2.0, 5.0]}, signature="dt_float")
    assert result["y"].dtype == np.float32
    assert result["y"].tolist() == [1.0, 2.0, 5.0]


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("protocol", ["grpc", "http"])
async def test_cast_and_validate_are_independent(server: ModelServer, protocol: str) -> None:
    target = f"grpc://{server.grpc_target}" if protocol == "grpc" else server.rest_url
    # half_plus_two declares x as DT_FLOAT [-1, 1]; the model itself is elementwise.
    async with Client(target, timeout=STEP, max_retries=0) as client, within(STEP):
        cast = await client.with_options(cast=True).predict("half_plus_two", {"x": [1.0, 2.0, 5.0]})
        with pytest.raises(InvalidInputError, match=r"shape \[2\].*\[-1, 1\]"):
            await client.with_options(validate=True).predict("half_plus_two", {"x": [1.0, 2.0]})
        both = client.with_options(cast=True, validate=True)
        checked = await both.predict("half_plus_two", {"x": np.array([[1], [2]], np.int32)})
    assert cast["y"].tolist() == [2.5, 3.0, 4.5]
    assert checked["y"].dtype == np.float32
    assert checked["y"].tolist() == [[2.5], [3.0]]
