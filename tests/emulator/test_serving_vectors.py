"""Every ``grpc_call`` case of TF Serving's vectors, run against ServerCore directly (no sockets).

The fixtures of the cases (TF Serving's test set-ups) are one core serving TF
Serving's own SavedModels from ``models.config`` entries, executed by the
reference Python functions (TensorFlow is not needed).
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from google.protobuf import json_format
from google.protobuf.message import Message

from tests.support import reference as tfs_reference
from tfs_async import _grpc_methods as _methods
from tfs_async._proto import (
    classification_pb2,
    example_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    predict_pb2,
    regression_pb2,
)
from tfs_async.config import model_config, model_server_config
from tfs_async.errors import StatusCode
from tfs_async.testing.serving import ServerCore
from tfs_async.testing.status import ServingStatus

STEP = 10.0
CASES = tfs_reference.load_vectors("grpc_call")

# rpc path -> (request class, core method name)
_RPCS: dict[str, tuple[type[Message], str]] = {
    _methods.PREDICT: (predict_pb2.PredictRequest, "predict"),
    _methods.CLASSIFY: (classification_pb2.ClassificationRequest, "classify"),
    _methods.REGRESS: (regression_pb2.RegressionRequest, "regress"),
    _methods.MULTI_INFERENCE: (inference_pb2.MultiInferenceRequest, "multi_inference"),
    _methods.GET_MODEL_METADATA: (
        get_model_metadata_pb2.GetModelMetadataRequest,
        "get_model_metadata",
    ),
    _methods.GET_MODEL_STATUS: (get_model_status_pb2.GetModelStatusRequest, "get_model_status"),
}


@pytest_asyncio.fixture
async def core(models_dir: Path) -> AsyncIterator[ServerCore]:
    """TF Serving's test fixtures in one server: test_model, default and the 2-versions model."""
    cpu = str(models_dir / "saved_model_half_plus_two_cpu")
    two = str(models_dir / "saved_model_half_plus_two_2_versions")
    config = model_server_config(
        [
            model_config("test_model", cpu),
            model_config("default", cpu),
            model_config("saved_model_half_plus_two_2_versions", two, versions=[123, 124]),
        ]
    )
    srv = ServerCore(config=config)
    await asyncio.wait_for(srv.start(), STEP)
    yield srv
    await asyncio.wait_for(srv.stop(), STEP)


def _tensor_json(spec: dict[str, Any]) -> dict[str, Any]:
    out = dict(spec)
    shape = out.pop("shape", None)
    if shape is not None:
        out["tensor_shape"] = {"dim": [{"size": d} for d in shape]}
    if "string_val" in out:
        # Proto JSON carries bytes as base64; the vectors give the raw strings.
        out["string_val"] = [base64.b64encode(s.encode()).decode() for s in out["string_val"]]
    return out


def _example_json(features: dict[str, Any]) -> dict[str, Any]:
    example = example_pb2.Example()
    for name, feature in features.items():
        for kind, values in feature.items():
            getattr(example.features.feature[name], kind).value.extend(
                [v.encode() if isinstance(v, str) else v for v in values]
            )
    return json_format.MessageToDict(example, preserving_proto_field_name=True)


def _request_json(request: dict[str, Any]) -> dict[str, Any]:
    out = dict(request)
    if "inputs" in out:
        out["inputs"] = {k: _tensor_json(v) for k, v in out["inputs"].items()}
    if "input" in out:
        inp = dict(out["input"])
        for kind in ("example_list", "example_list_with_context"):
            if kind in inp:
                lst = dict(inp[kind])
                lst["examples"] = [_example_json(e) for e in lst.get("examples", [])]
                if "context" in lst:
                    lst["context"] = _example_json(lst["context"])
                inp[kind] = lst
        out["input"] = inp
    return out


def _normalize(node: Any) -> Any:
    """Proto JSON -> the vectors' notation: ints for int64, shape lists, *_len counts."""
    if isinstance(node, list):
        return [_normalize(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _normalize(v) for k, v in node.items()}
    if "version" in out and isinstance(out["version"], str):
        out["version"] = int(out["version"])
    if "dtype" in out and "tensor_shape" in out:
        out["shape"] = [int(d["size"]) for d in out["tensor_shape"].get("dim", [])]
    for key, value in list(out.items()):
        if key.endswith("_val") and isinstance(value, list):
            out[f"{key}_len"] = len(value)
    if "error_code" in out and isinstance(out["error_code"], str):
        out["error_code"] = int(StatusCode[out["error_code"]])
    return out


def _response_json(response: Message) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if isinstance(response, get_model_metadata_pb2.GetModelMetadataResponse):
        # The Any's type URL is TF's, unknown to our descriptor pool: report it by hand.
        extra["metadata_keys"] = sorted(response.metadata)
        urls = {v.type_url for v in response.metadata.values()}
        extra["metadata_any_type_url"] = urls.pop() if len(urls) == 1 else sorted(urls)
        response = type(response)(model_spec=response.model_spec)
    doc = json_format.MessageToDict(
        response, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return {**_normalize(doc), **extra}


def _assert_subset(expected: Any, actual: Any, where: str = "response") -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{where}: missing {key!r} in {actual!r}"
            _assert_subset(value, actual[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{where}: expected a list, got {actual!r}"
        assert len(expected) == len(actual), f"{where}: {expected!r} != {actual!r}"
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            _assert_subset(e, a, f"{where}[{i}]")
    else:
        assert expected == actual, f"{where}: expected {expected!r}, got {actual!r}"


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
async def test_grpc_call_vector(core: ServerCore, case: dict[str, Any]) -> None:
    request_cls, method = _RPCS[case["input"]["rpc"]]
    request = json_format.ParseDict(_request_json(case["input"]["request"]), request_cls())
    call: Callable[[Message], Coroutine[Any, Any, Message]] = getattr(core, method)
    expected = case["expected"]
    if expected["code"] == "OK":
        response = await asyncio.wait_for(call(request), STEP)
        _assert_subset(expected.get("response", {}), _response_json(response))
        return
    with pytest.raises(ServingStatus) as info:
        await asyncio.wait_for(call(request), STEP)
    assert info.value.code == StatusCode[expected["code"]], info.value
    if "message" in expected:
        assert info.value.message == expected["message"]
    wanted = expected.get("message_contains", expected.get("details_contains", []))
    for fragment in [wanted] if isinstance(wanted, str) else wanted:
        assert fragment in info.value.message


def test_every_grpc_case_is_collected() -> None:
    # The vectors file is the contract: a silently empty parametrization would pass.
    assert len(CASES) >= 23
