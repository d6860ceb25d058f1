"""gRPC transport behaviour of the emulator: truncation, message sizes, every method, reload."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import numpy as np
import pytest
import pytest_asyncio
from hypothesis import given
from hypothesis import strategies as st

from tfs_async import _grpc_methods as _methods
from tfs_async._proto import (
    classification_pb2,
    example_pb2,
    get_model_metadata_pb2,
    inference_pb2,
    model_management_pb2,
    predict_pb2,
    regression_pb2,
    types_pb2,
)
from tfs_async.testing import ModelServer, PythonModel
from tfs_async.testing.grpc_service import (
    HEALTH_SERVICE,
    MESSAGE_LIMIT,
    health_messages,
    truncate_message,
)
from tfs_async.testing.saved_model import SavedModel

TIMEOUT = 10.0  # every await here is bounded by this many seconds
BIG = 64 * 1024 * 1024  # client limits for the large-message test


@pytest_asyncio.fixture
async def hpt(models_dir: Path) -> AsyncIterator[tuple[ModelServer, grpc.aio.Channel]]:
    """TF Serving's half_plus_two (version 123) as "hpt", with a channel to it."""
    model = SavedModel("hpt", models_dir / "saved_model_half_plus_two_cpu")
    options = [("grpc.max_receive_message_length", BIG), ("grpc.max_send_message_length", BIG)]
    async with (
        ModelServer([model], rest_port=None) as srv,
        grpc.aio.insecure_channel(srv.grpc_target, options=options) as channel,
    ):
        yield srv, channel


def _call(channel: grpc.aio.Channel, path: str, response_type: Any) -> Any:
    return channel.unary_unary(
        path,
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response_type.FromString,
    )


def _examples(request: Any, xs: list[float]) -> None:
    for x in xs:
        example = example_pb2.Example()
        example.features.feature["x"].float_list.value.append(x)
        request.input.example_list.examples.append(example)


@given(st.text(max_size=1500))
def test_truncation_rule(message: str) -> None:
    out = truncate_message(message)
    raw = message.encode()
    if len(raw) <= MESSAGE_LIMIT:
        assert out == message
    else:
        assert out.endswith("...TRUNCATED")
        kept = out[: -len("...TRUNCATED")].encode()
        assert raw.startswith(kept)
        assert MESSAGE_LIMIT - 3 <= len(kept) <= MESSAGE_LIMIT


async def test_long_messages_are_truncated_on_the_wire(
    hpt: tuple[ModelServer, grpc.aio.Channel],
) -> None:
    _, channel = hpt
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "m" * 2000
    async with asyncio.timeout(TIMEOUT):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await _call(channel, _methods.PREDICT, predict_pb2.PredictResponse)(request)
    details = info.value.details() or ""
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert details.startswith("Servable not found for request: Latest(mmm")
    assert details.endswith("...TRUNCATED")
    assert len(details.encode()) == MESSAGE_LIMIT + len("...TRUNCATED")


async def test_messages_beyond_grpcs_4mib_default(
    hpt: tuple[ModelServer, grpc.aio.Channel],
) -> None:
    _, channel = hpt
    values = np.arange(2_000_000, dtype=np.float32)  # 8 MB each way
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "hpt"
    x = request.inputs["x"]
    x.dtype = types_pb2.DT_FLOAT
    x.tensor_shape.dim.add(size=values.size)
    x.tensor_content = values.tobytes()
    async with asyncio.timeout(TIMEOUT):
        response = await _call(channel, _methods.PREDICT, predict_pb2.PredictResponse)(request)
    y = np.asarray(response.outputs["y"].float_val, dtype=np.float32)
    np.testing.assert_array_equal(y, values * np.float32(0.5) + np.float32(2))


async def test_classify_regress_multi_inference(
    hpt: tuple[ModelServer, grpc.aio.Channel],
) -> None:
    _, channel = hpt
    classify = classification_pb2.ClassificationRequest()
    classify.model_spec.name, classify.model_spec.signature_name = "hpt", "classify_x_to_y"
    _examples(classify, [1.0, 2.0])
    regress = regression_pb2.RegressionRequest()
    regress.model_spec.name, regress.model_spec.signature_name = "hpt", "regress_x_to_y2"
    _examples(regress, [2.0])
    multi = inference_pb2.MultiInferenceRequest()
    for sig, method in (("regress_x_to_y", "regress"), ("classify_x_to_y", "classify")):
        task = multi.tasks.add()
        task.model_spec.name, task.model_spec.signature_name = "hpt", sig
        task.method_name = f"tensorflow/serving/{method}"
    _examples(multi, [4.0])
    async with asyncio.timeout(TIMEOUT):
        c = await _call(channel, _methods.CLASSIFY, classification_pb2.ClassificationResponse)(
            classify
        )
        r = await _call(channel, _methods.REGRESS, regression_pb2.RegressionResponse)(regress)
        m = await _call(channel, _methods.MULTI_INFERENCE, inference_pb2.MultiInferenceResponse)(
            multi
        )
    assert [cl.classes[0].score for cl in c.result.classifications] == [2.5, 3.0]
    assert c.model_spec.version.value == 123
    assert [reg.value for reg in r.result.regressions] == [4.0]  # 0.5 * 2 + 3
    assert m.results[0].regression_result.regressions[0].value == 4.0
    assert m.results[1].classification_result.classifications[0].classes[0].score == 4.0


async def test_metadata_any_has_tf_serving_type_url(
    hpt: tuple[ModelServer, grpc.aio.Channel],
) -> None:
    _, channel = hpt
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "hpt"
    async with asyncio.timeout(TIMEOUT):
        response = await _call(
            channel, _methods.GET_MODEL_METADATA, get_model_metadata_pb2.GetModelMetadataResponse
        )(request)
    packed = response.metadata["signature_def"]
    assert packed.type_url == _methods.SIGNATURE_DEF_MAP_TYPE_URL
    sigs = get_model_metadata_pb2.SignatureDefMap.FromString(packed.value)
    assert "serving_default" in sigs.signature_def


async def test_bad_reload_keeps_serving(
    hpt: tuple[ModelServer, grpc.aio.Channel], models_dir: Path
) -> None:
    _, channel = hpt
    reload = _call(
        channel, _methods.HANDLE_RELOAD_CONFIG, model_management_pb2.ReloadConfigResponse
    )
    request = model_management_pb2.ReloadConfigRequest()
    entry = request.config.model_config_list.config.add()
    entry.name = "hpt"
    entry.base_path = str(models_dir / "saved_model_half_plus_two_cpu")
    entry.version_labels["stable"] = 999  # no such version: TF Serving refuses the config
    predict = predict_pb2.PredictRequest()
    predict.model_spec.name = "hpt"
    predict.inputs["x"].dtype = types_pb2.DT_FLOAT
    predict.inputs["x"].tensor_shape.dim.add(size=1)
    predict.inputs["x"].float_val.append(4.0)
    async with asyncio.timeout(TIMEOUT):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await reload(request)
        answer = await _call(channel, _methods.PREDICT, predict_pb2.PredictResponse)(predict)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "version 999 of model hpt" in (info.value.details() or "")
    assert list(answer.outputs["y"].float_val) == [4.0]


async def test_unknown_method_is_unimplemented(
    hpt: tuple[ModelServer, grpc.aio.Channel],
) -> None:
    _, channel = hpt
    call = _call(channel, "/tensorflow.serving.PredictionService/Nope", predict_pb2.PredictResponse)
    async with asyncio.timeout(TIMEOUT):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call(predict_pb2.PredictRequest())
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


@pytest.mark.parametrize(
    ("service", "code"),
    [("", "OK"), ("PredictionService", "OK"), ("ModelService", "OK"), ("Other", "NOT_FOUND")],
)
async def test_health_check_service(
    make_double_model: Callable[..., PythonModel], service: str, code: str
) -> None:
    request_type, response_type = health_messages()
    async with (
        asyncio.timeout(TIMEOUT),
        ModelServer(
            [make_double_model()], rest_port=None, enable_grpc_healthcheck_service=True
        ) as srv,
        grpc.aio.insecure_channel(srv.grpc_target) as channel,
    ):
        check = _call(channel, f"/{HEALTH_SERVICE}/Check", response_type)
        try:
            response = await check(request_type(service=service))
            got = "OK"
        except grpc.aio.AioRpcError as err:
            got = err.code().name
    assert got == code
    if code == "OK":
        assert response.status == 1  # SERVING


async def test_health_check_is_off_by_default(
    hpt: tuple[ModelServer, grpc.aio.Channel],
) -> None:
    _, channel = hpt
    request_type, response_type = health_messages()
    async with asyncio.timeout(TIMEOUT):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await _call(channel, f"/{HEALTH_SERVICE}/Check", response_type)(request_type())
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
