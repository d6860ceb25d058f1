"""Malformed answers from servers that are not (quite) TF Serving, over real sockets.

A raw aiohttp server (REST) and a raw grpc.aio server with a generic handler
(gRPC) stand where TF Serving would: for model ``half_plus_two`` they pass the
call to the emulator untouched, for the others they answer one kind of
garbage. Each bad answer must raise a typed error saying what was wrong; the
same client's next call to the good model must succeed (no crashed event loop,
no poisoned connection pool).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
import numpy as np
import pytest
import pytest_asyncio
from aiohttp import ClientSession, web

from tests.support.client import STEP, within
from tfs_async import _grpc_methods
from tfs_async._proto import predict_pb2, tensor_pb2, types_pb2
from tfs_async.client import Client
from tfs_async.errors import (
    ResponseDecodeError,
    TFServingError,
    UnavailableError,
)
from tfs_async.testing import ModelServer

X = {"x": np.array([1.0, 2.0, 5.0], np.float32)}
Y = [2.5, 3.0, 4.5]


@dataclass(frozen=True)
class BadAnswer:
    """One malformed REST answer: status, content type, body; and what the error must say."""

    status: int
    content_type: str
    body: bytes
    error: type[TFServingError]
    says: str


HTML_502 = (
    b"<html><head><title>502 Bad Gateway</title></head>"
    b"<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"
)

REST_ANSWERS: dict[str, BadAnswer] = {
    "invalid-json": BadAnswer(
        200, "application/json", b"{outputs: [1, 2", ResponseDecodeError, "not JSON"
    ),
    "truncated-json": BadAnswer(
        200, "application/json", b'{"outputs": [2.5, 3.0, 4.', ResponseDecodeError, "not JSON"
    ),
    "empty-body": BadAnswer(200, "application/json", b"", ResponseDecodeError, "not JSON"),
    "html-502": BadAnswer(502, "text/html", HTML_502, UnavailableError, "502 Bad Gateway"),
    "html-200": BadAnswer(200, "text/html", HTML_502, ResponseDecodeError, "not JSON"),
    "wrong-type": BadAnswer(200, "text/plain", b"OK", ResponseDecodeError, "not JSON"),
    "json-array": BadAnswer(
        200, "application/json", b"[1, 2, 3]", ResponseDecodeError, "not a JSON object"
    ),
    "missing-outputs": BadAnswer(
        200,
        "application/json",
        b'{"model": "x"}',
        ResponseDecodeError,
        "neither 'predictions' nor 'outputs'",
    ),
    "ragged-outputs": BadAnswer(
        200,
        "application/json",
        b'{"outputs": [[1.0, 2.0], [3.0]]}',
        ResponseDecodeError,
        "output 'outputs'",
    ),
    "wrong-values": BadAnswer(
        200,
        "application/json",
        b'{"outputs": ["a", {"b": 1}]}',
        ResponseDecodeError,
        "output 'outputs'",
    ),
}


# Status and metadata answers whose JSON strings hold bytes that are not UTF-8 (path -> body).
NON_UTF8_ANSWERS: dict[str, bytes] = {
    "/v1/models/bad-state": (
        b'{"model_version_status": [{"version": "1", "state": "AVAIL\xffBLE"}]}'
    ),
    "/v1/models/bad-code": (
        b'{"model_version_status": [{"version": "1", "state": "END",'
        b' "status": {"error_code": "\xfe", "error_message": "x"}}]}'
    ),
    "/v1/models/bad-key/metadata": (
        b'{"model_spec": {"name": "bad-key", "version": "1"},'
        b' "metadata": {"signature_def": {"signature_def": {"s\xff": {}}}}}'
    ),
}


@pytest_asyncio.fixture
async def rest_front(server: ModelServer) -> AsyncIterator[str]:
    """A REST server answering REST_ANSWERS by model name, the emulator's answer otherwise."""
    session = ClientSession()

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        path = request.raw_path
        if path in NON_UTF8_ANSWERS:
            body = NON_UTF8_ANSWERS[path]
            return web.Response(body=body, headers={"Content-Type": "application/json"})
        for name, answer in REST_ANSWERS.items():
            if path.startswith(f"/v1/models/{name}") and path.endswith(":predict"):
                await request.read()
                return web.Response(
                    status=answer.status,
                    body=answer.body,
                    headers={"Content-Type": answer.content_type},
                )
            if path.startswith(f"/v1/models/{name}/"):
                # The metadata of a bad model is half_plus_two's (the client needs it).
                path = path.replace(f"/v1/models/{name}/", "/v1/models/half_plus_two/")
        async with session.request(
            request.method, f"{server.rest_url}{path}", data=await request.read()
        ) as upstream:
            return web.Response(
                status=upstream.status,
                body=await upstream.read(),
                headers={"Content-Type": upstream.headers.get("Content-Type", "")},
            )

    runner = web.ServerRunner(web.Server(handle), handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
        await session.close()


@pytest.mark.parametrize("model", sorted(REST_ANSWERS))
async def test_rest_bad_answer_is_typed_and_the_pool_stays_usable(
    rest_front: str, model: str
) -> None:
    answer = REST_ANSWERS[model]
    async with Client(rest_front, timeout=STEP, max_retries=0, pool_size=1) as client:
        async with within(STEP):
            assert (await client.predict("half_plus_two", X)).output.tolist() == Y
        with pytest.raises(answer.error) as caught:
            async with within(STEP):
                await client.predict(model, X)
        async with within(STEP):
            assert (await client.predict("half_plus_two", X)).output.tolist() == Y
    assert answer.says in str(caught.value)
    assert caught.value.model is not None
    assert caught.value.model.name == model


@pytest.mark.parametrize(
    ("call", "model", "where"),
    [
        ("status", "bad-state", "$.model_version_status[0].state: b'AVAIL\\xffBLE'"),
        ("status", "bad-code", "$.model_version_status[0].status.error_code: b'\\xfe'"),
        ("metadata", "bad-key", "$.signature_def: b's\\xff'"),
    ],
)
async def test_rest_non_utf8_strings_in_status_or_metadata_are_typed(
    rest_front: str, call: str, model: str, where: str
) -> None:
    """Non-UTF-8 bytes in an enum or a key: ResponseDecodeError naming where, not SystemError."""
    async with Client(rest_front, timeout=STEP, max_retries=0, pool_size=1) as client:
        with pytest.raises(ResponseDecodeError) as caught:
            async with within(STEP):
                await (client.status(model) if call == "status" else client.metadata(model))
        async with within(STEP):
            assert (await client.predict("half_plus_two", X)).output.tolist() == Y
    assert f"is not UTF-8 at {where}" in str(caught.value)


def _tensor(dtype: int, dims: list[int], **fields: Any) -> tensor_pb2.TensorProto:
    proto = tensor_pb2.TensorProto(**fields)
    proto.dtype = dtype  # type: ignore[assignment]  # unknown values too, on purpose
    for size in dims:
        proto.tensor_shape.dim.add(size=size)
    return proto


def _response(**outputs: tensor_pb2.TensorProto) -> bytes:
    response = predict_pb2.PredictResponse()
    for name, tensor in outputs.items():
        response.outputs[name].CopyFrom(tensor)
    return response.SerializeToString()


FLOAT = types_pb2.DT_FLOAT
GRPC_ANSWERS: dict[str, tuple[bytes, str]] = {
    "garbage": (b"\xff\xfe this is not a protobuf \x00\x01", "PredictResponse"),
    "truncated": (
        _response(y=_tensor(FLOAT, [3], float_val=[1.0, 2.0, 3.0]))[:-5],
        "PredictResponse",
    ),
    "short-content": (_response(y=_tensor(FLOAT, [3], tensor_content=b"\x00" * 8)), "'y'"),
    "long-content": (_response(y=_tensor(FLOAT, [3], tensor_content=b"\x00" * 16)), "'y'"),
    "too-many-values": (_response(y=_tensor(FLOAT, [2], float_val=[1.0, 2.0, 3.0])), "'y'"),
    "huge-shape": (_response(y=_tensor(FLOAT, [2**20, 2**20], float_val=[1.0])), "'y'"),
    "negative-dim": (_response(y=_tensor(FLOAT, [-3], float_val=[1.0])), "'y'"),
    "bad-dtype": (_response(y=_tensor(9999, [1], float_val=[1.0])), "'y'"),
    "invalid-dtype": (_response(y=_tensor(types_pb2.DT_INVALID, [1])), "'y'"),
}


@pytest_asyncio.fixture
async def grpc_front(server: ModelServer) -> AsyncIterator[str]:
    """A gRPC server answering GRPC_ANSWERS by model name, the emulator's answer otherwise."""
    upstream = grpc.aio.insecure_channel(server.grpc_target)
    forward = upstream.unary_unary(_grpc_methods.PREDICT)

    async def predict(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        name = predict_pb2.PredictRequest.FromString(request).model_spec.name
        if name in GRPC_ANSWERS:
            return GRPC_ANSWERS[name][0]
        answer: bytes = await forward(request, timeout=context.time_remaining())
        return answer

    service, method = _grpc_methods.PREDICT.strip("/").split("/")
    handler = grpc.method_handlers_generic_handler(
        service, {method: grpc.unary_unary_rpc_method_handler(predict)}
    )
    front = grpc.aio.server(handlers=[handler])
    port = front.add_insecure_port("127.0.0.1:0")
    await front.start()
    try:
        yield f"grpc://127.0.0.1:{port}"
    finally:
        await front.stop(None)
        await upstream.close()


@pytest.mark.parametrize("model", sorted(GRPC_ANSWERS))
async def test_grpc_bad_answer_is_typed_and_the_channel_stays_usable(
    grpc_front: str, model: str
) -> None:
    says = GRPC_ANSWERS[model][1]
    async with Client(grpc_front, timeout=STEP, max_retries=0) as client:
        async with within(STEP):
            assert (await client.predict("half_plus_two", X)).output.tolist() == Y
        with pytest.raises(ResponseDecodeError) as caught:
            async with within(STEP):
                await client.predict(model, X)
        async with within(STEP):
            assert (await client.predict("half_plus_two", X)).output.tolist() == Y
    assert says in str(caught.value)
    assert caught.value.model is not None
    assert caught.value.model.name == model


async def test_bad_answers_leave_no_task_behind(grpc_front: str, rest_front: str) -> None:
    """Many concurrent bad answers, both transports: afterwards no task of the client remains."""
    for target, bad in ((grpc_front, "garbage"), (rest_front, "truncated-json")):
        async with Client(target, timeout=STEP, max_retries=0) as client:
            async with within(STEP):
                await client.predict("half_plus_two", X)
                outcomes = await asyncio.gather(
                    *(client.predict(bad, X) for _ in range(50)), return_exceptions=True
                )
            assert all(isinstance(o, ResponseDecodeError) for o in outcomes)
    assert client_tasks() == []


def client_tasks() -> list[asyncio.Task[Any]]:
    """The running tasks whose coroutine is tfs_async's client code (not the test's servers)."""
    found = []
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        filename = getattr(code, "co_filename", "")
        if "tfs_async" in filename and "testing" not in filename:
            found.append(task)
    return found
