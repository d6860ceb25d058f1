"""The baselines every SDK figure is compared with, measured in the same run.

- ``floor/grpc``: a bare ``grpc.aio`` unary call of prebuilt ``PredictRequest``
  bytes on TF Serving's method path, response left as bytes (the gRPC floor);
- ``floor/http``: a bare aiohttp POST of prebuilt JSON, body read as bytes (the HTTP floor);
- ``typical/http``: what a typical user writes: ``json.dumps({"instances": x.tolist()})``
  over aiohttp and ``np.array(json.loads(body)["predictions"])``;
- ``typical/grpc-stub``: Google's ``PredictionServiceStub`` with ``tf.make_tensor_proto``
  / ``tf.make_ndarray`` (needs tensorflow-serving-api and tensorflow);
- ``peer/ovmsclient``: OpenVINO's ``ovmsclient`` gRPC client (synchronous: run in a thread).

:func:`optional_baselines` returns the ones whose packages are installed and a
note for each one skipped, which the report prints.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np

from tfs_async._grpc_methods import PREDICT
from tfs_async.bench import _deps
from tfs_async.bench.contenders import CALL_TIMEOUT_S, Contender, Endpoints, Prepared
from tfs_async.bench.payloads import Payload, grpc_request_bytes, json_request_bytes

__all__ = [
    "GRPC_CHANNEL_OPTIONS",
    "GoogleStubBaseline",
    "GrpcFloor",
    "HttpFloor",
    "OvmsClientBaseline",
    "TypicalHttpBaseline",
    "optional_baselines",
    "predict_url",
]

#: big tensors exceed gRPC's 4 MiB default; TF Serving itself accepts up to 2 GiB
GRPC_CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", -1),
)

_GRPC_FRAME_PREFIX = 5  # compressed flag + 4-byte length before each message


class HttpStatusError(Exception):
    """A baseline's HTTP request answered with a non-200 status."""


def predict_url(endpoints: Endpoints, name: str | None = None) -> str:
    """TF Serving's REST predict URL of the target model.

    >>> from tfs_async.bench.payloads import TargetModel
    >>> predict_url(Endpoints("h:1", "http://h:2", TargetModel("m")))
    'http://h:2/v1/models/m:predict'
    """
    from urllib.parse import quote

    model = quote(name or endpoints.model.name, safe="")
    return f"{endpoints.rest_url.rstrip('/')}/v1/models/{model}:predict"


class GrpcFloor(Contender):
    """A bare grpc.aio unary call of prebuilt request bytes (no encode, no decode)."""

    key = "floor/grpc"
    label = "bare grpc.aio unary call, prebuilt request bytes (gRPC floor)"
    protocol = "grpc"
    role = "floor"

    def __init__(self) -> None:
        self._channel: Any = None
        self._model = ""

    async def open(self, endpoints: Endpoints, *, max_concurrency: int) -> None:
        """One channel, message limits raised."""
        import grpc

        self._channel = grpc.aio.insecure_channel(
            endpoints.grpc_target, options=list(GRPC_CHANNEL_OPTIONS)
        )
        await asyncio.wait_for(self._channel.channel_ready(), CALL_TIMEOUT_S)
        self._model = endpoints.model.name

    async def prepare(self, payload: Payload) -> Prepared:
        """Serialize once; each call sends the same bytes and keeps the answer as bytes."""
        # no serializers: grpc.aio passes bytes through untouched
        method = self._channel.unary_unary(PREDICT)
        request = grpc_request_bytes(self._model, payload)

        async def call() -> bytes:
            response: bytes = await method(request, timeout=CALL_TIMEOUT_S)
            return response

        try:
            response = await call()
        except Exception:  # the load runs will count this failure; sizes stay unknown
            return Prepared(call, request_bytes=len(request) + _GRPC_FRAME_PREFIX)
        return Prepared(
            call,
            request_bytes=len(request) + _GRPC_FRAME_PREFIX,
            response_bytes=len(response) + _GRPC_FRAME_PREFIX,
            sample_response=response,
        )

    async def close(self) -> None:
        """Close the channel."""
        if self._channel is not None:
            channel, self._channel = self._channel, None
            await channel.close()


def _header_bytes(headers: Any) -> int:
    # "Name: value\r\n" per header, as HTTP/1.1 writes them
    return sum(len(k) + len(v) + 4 for k, v in headers.items())


class HttpFloor(Contender):
    """A bare aiohttp POST of prebuilt JSON bytes, the body read but not parsed."""

    key = "floor/http"
    label = "bare aiohttp POST, prebuilt JSON bytes (HTTP floor)"
    protocol = "http"
    role = "floor"

    def __init__(self) -> None:
        self._session: Any = None
        self._url = ""

    async def open(self, endpoints: Endpoints, *, max_concurrency: int) -> None:
        """One session with aiohttp's default connector (at most 100 connections)."""
        import aiohttp

        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT_S))
        self._url = predict_url(endpoints)

    async def prepare(self, payload: Payload) -> Prepared:
        """Encode once with orjson; each call posts the same bytes."""
        session, url = self._session, self._url
        body = json_request_bytes(payload)
        headers = {"Content-Type": "application/json"}

        async def call() -> bytes:
            async with session.post(url, data=body, headers=headers) as resp:
                data: bytes = await resp.read()
                if resp.status != 200:
                    raise HttpStatusError(f"HTTP {resp.status}: {data[:200]!r}")
                return data

        async with session.post(url, data=body, headers=headers) as resp:
            data = await resp.read()
            if resp.status != 200:  # the load runs will count the failures; sizes unknown
                return Prepared(call, request_bytes=len(body))
            request_line = len(f"POST {resp.request_info.url.raw_path} HTTP/1.1\r\n") + 2
            status_line = len(f"HTTP/1.1 {resp.status} {resp.reason}\r\n") + 2
            return Prepared(
                call,
                request_bytes=len(body),
                response_bytes=len(data),
                request_header_bytes=request_line + _header_bytes(resp.request_info.headers),
                response_header_bytes=status_line + _header_bytes(resp.headers),
                sample_response=data,
            )

    async def close(self) -> None:
        """Close the session."""
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


def _to_json_value(array: np.ndarray[Any, Any]) -> Any:
    if array.dtype == object:
        return [v.decode("utf-8") for v in array.ravel()]
    return array.tolist()


class TypicalHttpBaseline(HttpFloor):
    """What most users write: stdlib ``json`` and ``tolist()`` over a default aiohttp session."""

    key = "typical/http"
    label = "typical user code: stdlib json + tolist() over aiohttp"
    protocol = "http"
    role = "typical"

    async def open(self, endpoints: Endpoints, *, max_concurrency: int) -> None:
        """A default ``aiohttp.ClientSession()``, as in most examples."""
        import aiohttp

        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT_S))
        self._url = predict_url(endpoints)

    async def prepare(self, payload: Payload) -> Prepared:
        """Encode with ``json.dumps``/``tolist()`` and decode with ``json.loads`` every call."""
        session, url, signature = self._session, self._url, payload.signature
        array, dtype = payload.array, payload.array.dtype

        def body() -> str:
            data: dict[str, Any] = {"instances": _to_json_value(array)}
            if signature:
                data["signature_name"] = signature
            return json.dumps(data)

        async def call() -> Any:
            async with session.post(url, data=body()) as resp:
                text = await resp.text()
                if resp.status != 200:
                    raise HttpStatusError(f"HTTP {resp.status}: {text[:200]}")
            return np.array(json.loads(text)["predictions"], dtype=dtype)

        return Prepared(call, request_bytes=len(body().encode()))


class GoogleStubBaseline(Contender):
    """Google's ``PredictionServiceStub`` on a grpc.aio channel, tensors via TensorFlow."""

    key = "typical/grpc-stub"
    label = "tensorflow-serving-api PredictionServiceStub + tf.make_tensor_proto"
    protocol = "grpc"
    role = "typical"

    def __init__(self) -> None:
        self._channel: Any = None
        self._stub: Any = None
        self._model = ""

    async def open(self, endpoints: Endpoints, *, max_concurrency: int) -> None:
        """One channel and a stub, as the TF Serving examples do."""
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        self._channel = grpc.aio.insecure_channel(
            endpoints.grpc_target, options=list(GRPC_CHANNEL_OPTIONS)
        )
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._model = endpoints.model.name

    async def prepare(self, payload: Payload) -> Prepared:
        """Build the request with ``tf.make_tensor_proto`` and decode with ``tf.make_ndarray``."""
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2 as tf_predict_pb2

        stub, model, sig = self._stub, self._model, payload.signature
        array, alias, out = payload.array, payload.input_name, payload.output_name

        async def call() -> Any:
            request = tf_predict_pb2.PredictRequest()
            request.model_spec.name = model
            if sig:
                request.model_spec.signature_name = sig
            request.inputs[alias].CopyFrom(tf.make_tensor_proto(array))
            response = await stub.Predict(request, timeout=CALL_TIMEOUT_S)
            return tf.make_ndarray(response.outputs[out])

        return Prepared(call)

    async def close(self) -> None:
        """Close the channel."""
        if self._channel is not None:
            channel, self._channel = self._channel, None
            await channel.close()


class OvmsClientBaseline(Contender):
    """OpenVINO Model Server's ``ovmsclient`` (gRPC, synchronous, run in a worker thread)."""

    key = "peer/ovmsclient"
    label = "ovmsclient gRPC client (sync, via asyncio.to_thread)"
    protocol = "grpc"
    role = "peer"

    def __init__(self) -> None:
        self._client: Any = None
        self._model = ""
        self._version = 0

    async def open(self, endpoints: Endpoints, *, max_concurrency: int) -> None:
        """``ovmsclient.make_grpc_client(host:port)``, addressing the newest version."""
        ovmsclient = _deps.require("ovmsclient", "ovmsclient")
        self._client = ovmsclient.make_grpc_client(endpoints.grpc_target)
        self._model = endpoints.model.name
        # its default version 0 means "latest" to OVMS but "version 0" to TF Serving
        self._version = await latest_version(endpoints.grpc_target, self._model)

    async def prepare(self, payload: Payload) -> Prepared:
        """``client.predict(inputs=..., model_name=...)`` in a thread per call."""
        if payload.signature not in (None, "serving_default"):
            raise NotImplementedError(
                f"ovmsclient cannot choose a signature; payload {payload.name} needs "
                f"{payload.signature!r}"
            )
        client, model, version = self._client, self._model, self._version
        array = payload.array
        if array.dtype == object:  # it takes numpy's fixed-width bytes, not object arrays
            array = np.array(list(array.ravel()), dtype=bytes).reshape(array.shape)
        inputs = {payload.input_name: array}

        async def call() -> Any:
            return await asyncio.to_thread(
                client.predict,
                inputs=inputs,
                model_name=model,
                model_version=version,
                timeout=CALL_TIMEOUT_S,
            )

        return Prepared(call)

    async def close(self) -> None:
        """Close the client's gRPC channel."""
        client, self._client = self._client, None
        channel = getattr(client, "channel", None)
        if channel is not None:
            channel.close()


async def latest_version(grpc_target: str, model: str) -> int:
    """The newest AVAILABLE version of ``model``, from a bare GetModelStatus call."""
    import grpc

    from tfs_async._grpc_methods import GET_MODEL_STATUS
    from tfs_async._proto import get_model_status_pb2

    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = model
    async with grpc.aio.insecure_channel(grpc_target) as channel:
        method = channel.unary_unary(
            GET_MODEL_STATUS,
            request_serializer=get_model_status_pb2.GetModelStatusRequest.SerializeToString,
            response_deserializer=get_model_status_pb2.GetModelStatusResponse.FromString,
        )
        response = await method(request, timeout=CALL_TIMEOUT_S)
    available = [
        int(v.version)
        for v in response.model_version_status
        if v.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    ]
    if not available:
        raise RuntimeError(f"model {model!r} has no AVAILABLE version at {grpc_target}")
    return max(available)


def optional_baselines() -> tuple[list[Contender], list[str]]:
    """The optional baselines that can run here, and a note for each one that cannot."""
    found: list[Contender] = []
    notes: list[str] = []
    if _deps.optional("tensorflow_serving.apis.prediction_service_pb2_grpc") is None:
        notes.append(
            f"{GoogleStubBaseline.key} skipped: tensorflow-serving-api is not installed "
            "(pip install tensorflow-serving-api tensorflow-cpu)"
        )
    elif _deps.optional("tensorflow") is None:
        notes.append(f"{GoogleStubBaseline.key} skipped: tensorflow is not installed")
    else:
        found.append(GoogleStubBaseline())
    if _deps.optional("ovmsclient") is None:
        notes.append(
            f"{OvmsClientBaseline.key} skipped: ovmsclient is not installed "
            "(pip install ovmsclient)"
        )
    else:
        found.append(OvmsClientBaseline())
    return found, notes
