"""vectors.json cases of kinds http_endpoint and grpc_call, against the running emulator.

Each case names the TF Serving test fixture it came from; a module-scoped
server reproduces each fixture, and the case is replayed over a real socket
(aiohttp for REST, grpc.aio with this package's messages for gRPC).
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
import pytest_asyncio
from aiohttp import ClientSession, ClientTimeout
from google.protobuf.message import Message
from yarl import URL

from tests.support import reference as tfs_reference
from tests.support.project_data import TF1_HALF_PLUS_THREE
from tfs_async import _grpc_methods as _methods
from tfs_async._proto import (
    classification_pb2,
    example_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    predict_pb2,
    regression_pb2,
    tensor_pb2,
)
from tfs_async.errors import StatusCode
from tfs_async.testing import ModelServer
from tfs_async.testing.saved_model import SavedModel

pytestmark = pytest.mark.asyncio(loop_scope="module")

STEP_TIMEOUT = 10.0  # every await here is bounded by this many seconds

HTTP_CASES = tfs_reference.load_vectors("http_endpoint")
GRPC_CASES = tfs_reference.load_vectors("grpc_call")

# Fixture text prefix -> the server that reproduces it.
_FIXTURES = {
    "handler_test": "handler",
    "model_server_test": "model_server",
    "predict_impl_test": "test_model",
    "get_model_metadata_impl_test": "test_model",
    "get_model_status_impl_test": "two_versions",
    "api_rest.md": "half_plus_three",
}

_RPC_TYPES: dict[str, tuple[Any, Any]] = {
    _methods.PREDICT: (predict_pb2.PredictRequest, predict_pb2.PredictResponse),
    _methods.CLASSIFY: (
        classification_pb2.ClassificationRequest,
        classification_pb2.ClassificationResponse,
    ),
    _methods.REGRESS: (regression_pb2.RegressionRequest, regression_pb2.RegressionResponse),
    _methods.MULTI_INFERENCE: (
        inference_pb2.MultiInferenceRequest,
        inference_pb2.MultiInferenceResponse,
    ),
    _methods.GET_MODEL_METADATA: (
        get_model_metadata_pb2.GetModelMetadataRequest,
        get_model_metadata_pb2.GetModelMetadataResponse,
    ),
    _methods.GET_MODEL_STATUS: (
        get_model_status_pb2.GetModelStatusRequest,
        get_model_status_pb2.GetModelStatusResponse,
    ),
    _methods.HANDLE_RELOAD_CONFIG: (
        model_management_pb2.ReloadConfigRequest,
        model_management_pb2.ReloadConfigResponse,
    ),
}


def _fixture_of(case: dict[str, Any]) -> str:
    text: str = case["input"]["fixture"]
    for prefix, name in _FIXTURES.items():
        if text.startswith(prefix):
            return name
    raise AssertionError(f"{case['id']}: no server reproduces fixture {text!r}")


def _half_plus_three() -> SavedModel:
    # The docs' docker example serves TF Serving's saved_model_half_plus_three (version 123,
    # y = 0.5 * x + 3); our own TF1 model behaves alike, served under the docs' name.
    return SavedModel("saved_model_half_plus_three", TF1_HALF_PLUS_THREE)


def _config(name: str, base_path: Path, versions: list[int], labels: dict[str, int]) -> str:
    specific = " ".join(f"versions: {v}" for v in versions)
    label_text = " ".join(f"version_labels {{ key: '{k}' value: {v} }}" for k, v in labels.items())
    return (
        f"model_config_list {{ config {{ name: '{name}' base_path: '{base_path}' "
        f"model_platform: 'tensorflow' model_version_policy {{ specific {{ {specific} }} }} "
        f"{label_text} }} }}"
    )


def _server_for(name: str, models_dir: Path) -> ModelServer:
    two_versions = models_dir / "saved_model_half_plus_two_2_versions"
    cpu = models_dir / "saved_model_half_plus_two_cpu"
    if name == "handler":
        config = _config(
            "saved_model_half_plus_two_2_versions", two_versions, [123], {"Version_Label": 123}
        )
        # Labels in the first config: TF's handler test labels after loading; same effect.
        return ModelServer(
            config=config,
            rest_api_timeout_in_ms=-1,
            allow_version_labels_for_unavailable_models=True,
        )
    if name == "model_server":
        return ModelServer(
            [SavedModel("default", cpu)],
            rest_api_timeout_in_ms=5000,
            prometheus_path="/monitoring/prometheus/metrics",
        )
    if name == "test_model":
        return ModelServer([SavedModel("test_model", cpu)])
    if name == "two_versions":
        config = _config("saved_model_half_plus_two_2_versions", two_versions, [123, 124], {})
        return ModelServer(config=config)
    if name == "half_plus_three":
        return ModelServer([_half_plus_three()])
    raise AssertionError(name)


class _LazyServers:
    """One server per fixture, started on first use."""

    def __init__(self, models_dir: Path) -> None:
        self.started: dict[str, ModelServer] = {}
        self._models_dir = models_dir

    async def get_running(self, name: str) -> ModelServer:
        if name not in self.started:
            srv = _server_for(name, self._models_dir)
            async with asyncio.timeout(STEP_TIMEOUT):
                await srv.start()
            self.started[name] = srv
        return self.started[name]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def servers(models_dir: Path) -> AsyncIterator[_LazyServers]:
    """The fixtures' servers, stopped at module end."""
    lazy = _LazyServers(models_dir)
    yield lazy
    for srv in lazy.started.values():
        async with asyncio.timeout(STEP_TIMEOUT):
            await srv.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def session() -> AsyncIterator[ClientSession]:
    async with ClientSession(timeout=ClientTimeout(total=STEP_TIMEOUT), auto_decompress=False) as s:
        yield s


# -- REST ------------------------------------------------------------------


def _sorted_deep(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted_deep(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        items = [_sorted_deep(v) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    return value


def _same_json(actual: Any, expected: Any) -> bool:
    """DOM equality: numbers by value (NaN equals NaN), objects unordered."""
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and actual.keys() == expected.keys()
            and all(_same_json(actual[k], expected[k]) for k in expected)
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(_same_json(a, e) for a, e in zip(actual, expected, strict=True))
        )
    if isinstance(expected, bool) or isinstance(actual, bool):
        return actual is expected
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return actual == expected or (math.isnan(actual) and math.isnan(expected))
    return bool(actual == expected)


@pytest.mark.parametrize("case", HTTP_CASES, ids=[c["id"] for c in HTTP_CASES])
async def test_http_endpoint(
    case: dict[str, Any], servers: _LazyServers, session: ClientSession
) -> None:
    srv = await servers.get_running(_fixture_of(case))
    given, expected = case["input"], case["expected"]
    body = (given.get("body") or "").encode()
    # The path goes out exactly as written (no re-quoting), as TF Serving's tests send it.
    url = URL(srv.rest_url + given["path"], encoded=True)
    async with session.request(
        given["method"], url, data=body if given["method"] == "POST" else None
    ) as resp:
        raw = await resp.read()
        assert resp.status == expected["http_status"], raw
        if "content_type" in expected:
            assert resp.headers.get("Content-Type") == expected["content_type"]
    if "body_contains" in expected:
        assert expected["body_contains"] in raw.decode()
        return
    # TF Serving's JSON may hold bare NaN/Infinity tokens; Python's json accepts them.
    document = json.loads(raw)
    if expected.get("body_is_error_json"):
        assert set(document) == {"error"}, document
        assert http_code_name(expected) == expected["status_code"]
        if "error_contains" in expected:
            assert expected["error_contains"] in document["error"]
        return
    want = expected["body_json"]
    compare = expected.get("compare", "dom")
    if compare == "sorted_object":
        assert _sorted_deep(document) == _sorted_deep(want)
    elif compare == "tokens":
        assert json.dumps(document, sort_keys=True) == json.dumps(want, sort_keys=True)
    else:
        assert _same_json(document, want), document


def http_code_name(expected: dict[str, Any]) -> str:
    """The status code name whose HTTP status the case expects (consistency check)."""
    from tfs_async.errors import http_status_for_code

    code = StatusCode[expected["status_code"]]
    assert http_status_for_code(code) == expected["http_status"]
    return code.name


# -- gRPC ------------------------------------------------------------------


def _tensor(data: dict[str, Any]) -> tensor_pb2.TensorProto:
    tensor = tensor_pb2.TensorProto(dtype=data["dtype"])
    if data.get("shape") is not None:
        tensor.tensor_shape.SetInParent()
        for size in data["shape"]:
            tensor.tensor_shape.dim.add(size=size)
    for key, values in data.items():
        if key.endswith("_val"):
            if key == "string_val":
                values = [v.encode() if isinstance(v, str) else v for v in values]
            getattr(tensor, key).extend(values)
    return tensor


def _example(features: dict[str, Any]) -> example_pb2.Example:
    example = example_pb2.Example()
    for name, feature in features.items():
        (kind, values), *_ = feature.items()
        if kind == "bytes_list":
            values = [v.encode() if isinstance(v, str) else v for v in values]
        getattr(example.features.feature[name], kind).value.extend(values)
    return example


def _fill(message: Message, data: dict[str, Any]) -> Message:
    """Build a request from a vector's dict (tensors and Examples in the vector notation)."""
    for key, value in data.items():
        field = message.DESCRIPTOR.fields_by_name[key]
        target = getattr(message, key)
        if key == "inputs" and isinstance(value, dict):
            for alias, tensor in value.items():
                target[alias].CopyFrom(_tensor(tensor))
        elif key == "examples":
            target.extend(_example(e) for e in value)
        elif key == "version" and field.message_type is not None:
            target.value = value
        elif field.message_type is not None and isinstance(value, dict):
            target.SetInParent()
            _fill(target, value)
        elif field.message_type is not None and isinstance(value, list):
            for item in value:
                _fill(target.add(), item)
        elif isinstance(value, list):
            target.extend(value)
        else:
            setattr(message, key, value)
    return message


def _check(actual: Any, expected: Any, where: str) -> None:
    """Every field the vector gives equals the response's (a subset comparison)."""
    if isinstance(expected, dict):
        for key, want in expected.items():
            if key == "float_val_len":
                assert len(actual.float_val) == want, where
            elif key == "metadata_keys":
                assert sorted(actual.metadata.keys()) == sorted(want), where
            elif key == "metadata_any_type_url":
                assert actual.metadata["signature_def"].type_url == want, where
            elif key == "shape":
                assert actual.HasField("tensor_shape"), where
                assert [d.size for d in actual.tensor_shape.dim] == want, where
            elif isinstance(actual, Message):
                field = actual.DESCRIPTOR.fields_by_name[key]
                value = getattr(actual, key)
                if field.enum_type is not None and isinstance(want, str):
                    value = field.enum_type.values_by_number[value].name
                elif key == "version" and field.message_type is not None:
                    value = value.value
                _check(value, want, f"{where}.{key}")
            else:  # a protobuf map
                _check(actual[key], want, f"{where}[{key}]")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), f"{where}: {list(actual)} != {expected}"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            _check(a, e, f"{where}[{i}]")
    elif isinstance(expected, float):
        assert math.isclose(actual, expected, rel_tol=1e-6), f"{where}: {actual} != {expected}"
    elif isinstance(expected, str) and isinstance(actual, bytes):
        assert actual == expected.encode(), where
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


@pytest.mark.parametrize("case", GRPC_CASES, ids=[c["id"] for c in GRPC_CASES])
async def test_grpc_call(case: dict[str, Any], servers: _LazyServers) -> None:
    srv = await servers.get_running(_fixture_of(case))
    given, expected = case["input"], case["expected"]
    request_type, response_type = _RPC_TYPES[given["rpc"]]
    request = _fill(request_type(), given["request"])
    async with grpc.aio.insecure_channel(srv.grpc_target) as channel:
        call = channel.unary_unary(
            given["rpc"],
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_type.FromString,
        )
        if expected["code"] == "OK":
            response = await call(request, timeout=STEP_TIMEOUT)
            _check(response, expected.get("response", {}), "response")
            return
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call(request, timeout=STEP_TIMEOUT)
    error = info.value
    assert error.code() == grpc.StatusCode[expected["code"]], error.details()
    details = error.details() or ""
    if "message" in expected:
        assert details == expected["message"]
    contains = expected.get("message_contains", [])
    for fragment in [contains] if isinstance(contains, str) else contains:
        assert fragment in details
    if "details_contains" in expected:
        assert expected["details_contains"] in details
