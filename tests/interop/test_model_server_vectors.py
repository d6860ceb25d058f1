"""TF Serving's own model-server test cases (``py.*`` in vectors.json), run as that test runs them.

``tensorflow_model_server_test.py`` starts the real server on
``saved_model_half_plus_two_cpu`` as model ``default`` and talks to it with
Google's generated stubs and plain JSON over HTTP. Here the same requests go to
the emulator, with TensorFlow executing the model (the SavedModel is copied under
a name the emulator has no Python functions for), and each case is reported by id.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
import pytest_asyncio
from google.protobuf import json_format
from google.protobuf.message import Message
from tensorflow.core.framework import types_pb2 as g_types
from tensorflow_serving.apis import classification_pb2 as g_classification
from tensorflow_serving.apis import get_model_metadata_pb2 as g_metadata
from tensorflow_serving.apis import get_model_status_pb2 as g_status
from tensorflow_serving.apis import inference_pb2 as g_inference
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2 as g_predict

from tests.support import reference as tfs_reference
from tests.support.interop_serving import HTTP_TIMEOUT, running
from tfs_async.testing import ModelServer
from tfs_async.testing.reference_models import REFERENCE_MODEL_DIRS
from tfs_async.testing.saved_model import SavedModel

pytestmark = pytest.mark.interop
ASYNC = pytest.mark.asyncio(loop_scope="module")

CASES = [c for c in tfs_reference.load_vectors() if c["id"].startswith("py.")]
GRPC_CASES = [c for c in CASES if c["kind"] == "grpc_call"]
REST_CASES = [c for c in CASES if c["kind"] == "http_endpoint"]
PROMETHEUS_PATH = "/monitoring/prometheus/metrics"
RPC_TIMEOUT = 30.0


def test_the_model_server_cases_are_all_here() -> None:
    assert len(GRPC_CASES) == 7
    assert len(REST_CASES) == 7
    for case in CASES:
        assert "saved_model_half_plus_two_cpu" in case["input"]["fixture"], case["id"]


@pytest.fixture(scope="module")
def default_model(half_plus_two_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base_path = tmp_path_factory.mktemp("models") / "default_half_plus_two"
    assert base_path.name not in REFERENCE_MODEL_DIRS
    shutil.copytree(half_plus_two_dir, base_path)
    return base_path


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def server(default_model: Path) -> AsyncIterator[ModelServer]:
    model_server = ModelServer(
        [SavedModel("default", default_model)],
        rest_api_timeout_in_ms=5000,
        prometheus_path=PROMETHEUS_PATH,
    )
    async with running(model_server) as srv:
        yield srv


# ---------------------------------------------------------------- requests in Google's classes


def _example(features: dict[str, Any]) -> dict[str, Any]:
    """The vectors' short example form -> tf.Example's proto3 JSON."""
    return {
        "features": {
            "feature": {
                name: {kind: {"value": values} for kind, values in feature.items()}
                for name, feature in features.items()
            }
        }
    }


def _tensor(tensor: dict[str, Any]) -> dict[str, Any]:
    """The vectors' tensor form ({dtype, shape, *_val}) -> TensorProto's proto3 JSON."""
    out = {k: v for k, v in tensor.items() if k != "shape"}
    if tensor.get("shape") is not None:
        out["tensor_shape"] = {"dim": [{"size": size} for size in tensor["shape"]]}
    return out


def _request(case: dict[str, Any]) -> Message:
    request = copy.deepcopy(case["input"]["request"])
    rpc = case["input"]["rpc"].rsplit("/", 1)[-1]
    if "input" in request:
        examples = request["input"]["example_list"]["examples"]
        request["input"]["example_list"]["examples"] = [_example(e) for e in examples]
    if "inputs" in request:
        request["inputs"] = {k: _tensor(v) for k, v in request["inputs"].items()}
    message: Message = {
        "GetModelStatus": g_status.GetModelStatusRequest,
        "GetModelMetadata": g_metadata.GetModelMetadataRequest,
        "Classify": g_classification.ClassificationRequest,
        "MultiInference": g_inference.MultiInferenceRequest,
        "Predict": g_predict.PredictRequest,
    }[rpc]()
    return json_format.ParseDict(request, message)


def _spec(spec: Any) -> dict[str, Any]:
    """A response ModelSpec in the vectors' form."""
    out = {"name": spec.name, "version": spec.version.value}
    if spec.signature_name:
        out["signature_name"] = spec.signature_name
    return out


def _classifications(result: Any) -> list[dict[str, Any]]:
    return [
        {"classes": [{"label": c.label, "score": c.score} for c in cls.classes]}
        for cls in result.classifications
    ]


def _observed(rpc: str, response: Any) -> dict[str, Any]:
    """What the case's ``expected.response`` talks about, read from Google's message."""
    if rpc == "GetModelStatus":
        return {
            "model_version_status": [
                {
                    "version": s.version,
                    "state": g_status.ModelVersionStatus.State.Name(s.state),
                    "status": {"error_code": s.status.error_code},
                }
                for s in response.model_version_status
            ]
        }
    if rpc == "GetModelMetadata":
        return {
            "model_spec": {
                "name": response.model_spec.name,
                "version": response.model_spec.version.value,
            },
            "metadata_keys": sorted(response.metadata),
            "metadata_any_type_url": response.metadata["signature_def"].type_url,
        }
    if rpc == "Classify":
        return {
            "model_spec": _spec(response.model_spec),
            "result": {"classifications": _classifications(response.result)},
        }
    if rpc == "MultiInference":
        results: list[dict[str, Any]] = []
        for result in response.results:
            entry: dict[str, Any] = {"model_spec": _spec(result.model_spec)}
            if result.HasField("regression_result"):
                values = [{"value": r.value} for r in result.regression_result.regressions]
                entry["regression_result"] = {"regressions": values}
            else:
                entry["classification_result"] = {
                    "classifications": _classifications(result.classification_result)
                }
            results.append(entry)
        return {"results": results}
    assert rpc == "Predict"
    outputs: dict[str, Any] = {}
    for name, tensor in response.outputs.items():
        outputs[name] = {
            "dtype": g_types.DataType.Name(tensor.dtype),
            "float_val": list(tensor.float_val),
            "float_val_len": len(tensor.float_val),
        }
    return {"model_spec": _spec(response.model_spec), "outputs": outputs}


def _expected(rpc: str, expected: dict[str, Any]) -> dict[str, Any]:
    """The case's expected response, with what the vectors leave implicit filled in."""
    want: dict[str, Any] = copy.deepcopy(expected)
    if rpc == "Predict":
        for tensor in want["outputs"].values():
            tensor.setdefault("float_val_len", len(tensor["float_val"]))
    return want


@ASYNC
@pytest.mark.parametrize("case", GRPC_CASES, ids=[c["id"] for c in GRPC_CASES])
async def test_grpc_case(server: ModelServer, case: dict[str, Any]) -> None:
    rpc = case["input"]["rpc"].rsplit("/", 1)[-1]
    request = _request(case)
    expected = case["expected"]
    async with grpc.aio.insecure_channel(server.grpc_target) as channel:
        stub: Any = (
            model_service_pb2_grpc.ModelServiceStub(channel)
            if rpc == "GetModelStatus"
            else prediction_service_pb2_grpc.PredictionServiceStub(channel)
        )
        call = getattr(stub, rpc)
        if expected["code"] != "OK":
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call(request, timeout=RPC_TIMEOUT)
            assert caught.value.code().name == expected["code"]
            assert expected["details_contains"] in (caught.value.details() or "")
            return
        response = await call(request, timeout=RPC_TIMEOUT)
    assert _observed(rpc, response) == _expected(rpc, expected["response"])


def _sorted(value: Any) -> Any:
    """SPEC §5 ``sorted_object``: lists and objects sorted recursively before comparing."""
    if isinstance(value, dict):
        return {k: _sorted(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return sorted((_sorted(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    return value


@ASYNC
@pytest.mark.parametrize("case", REST_CASES, ids=[c["id"] for c in REST_CASES])
async def test_rest_case(server: ModelServer, case: dict[str, Any]) -> None:
    given, expected = case["input"], case["expected"]
    url = server.rest_url + given["path"]
    async with (
        aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session,
        session.request(given["method"], url, data=given["body"]) as response,
    ):
        body = await response.read()
        assert response.status == expected["http_status"], body
        if "content_type" in expected:
            assert response.headers["Content-Type"] == expected["content_type"]
    if "body_contains" in expected:
        assert expected["body_contains"] in body.decode()
        return
    got, want = json.loads(body), expected["body_json"]
    if expected["compare"] == "sorted_object":
        got, want = _sorted(got), _sorted(want)
    else:
        assert expected["compare"] == "dom"
    assert got == want
