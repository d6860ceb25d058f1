"""Every Client method over both transports against the emulator (real sockets)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.support.client import ODD_NAME, STEP, target_of, within
from tfs_async.client import Client
from tfs_async.errors import InvalidArgumentError, InvalidInputError, UnimplementedError
from tfs_async.testing import ModelServer
from tfs_async.transport import CallOptions, GrpcTransport, Transport
from tfs_async.types import (
    ClassifyRequest,
    ClassifyResult,
    ModelMetadata,
    ModelSpec,
    ModelVersionStatus,
    MultiInferenceRequest,
    MultiInferenceResult,
    PredictRequest,
    PredictResult,
    RegressRequest,
    RegressResult,
    VersionState,
)

X = np.array([1.0, 2.0, 5.0], dtype=np.float32)


async def test_predict_half_plus_two(client: Client, protocol: str) -> None:
    async with within(STEP):
        result = await client.predict("half_plus_two", {"x": X})
    # gRPC answers name the single output; a REST answer does not, and no metadata
    # was fetched to name it: the answer's key, "outputs". result.output reads either.
    assert list(result) == (["y"] if protocol == "grpc" else ["outputs"])
    assert result.output.dtype == np.float32
    np.testing.assert_array_equal(result.output, np.array([2.5, 3.0, 4.5], np.float32))
    assert result.model is not None
    assert result.model.name == "half_plus_two"
    assert result.model.signature == "serving_default"
    if protocol == "grpc":
        assert result.model.version == 123  # REST answers carry no model spec


async def test_predict_one_array_names_the_single_input(client: Client) -> None:
    async with within(STEP):
        result = await client.predict("half_plus_two", X)
    np.testing.assert_array_equal(result["y"], [2.5, 3.0, 4.5])


async def test_predict_version_and_signature(client: Client) -> None:
    async with within(STEP):
        v1 = await client.predict("double", {"x": X}, version=1)
        latest = await client.predict("double", {"x": X})
        two = await client.predict(
            "double", {"a": np.array([5, 7]), "b": np.array([2, 2])}, signature="two"
        )
    np.testing.assert_array_equal(v1.output, X * 2 + 1)
    np.testing.assert_array_equal(latest.output, X * 2 + 2)
    assert two["sum"].dtype == np.int64
    np.testing.assert_array_equal(two["sum"], [7, 9])
    np.testing.assert_array_equal(two["diff"], [3, 5])


async def test_output_filter_keeps_only_the_asked_outputs(client: Client) -> None:
    inputs = {"a": np.array([5]), "b": np.array([2])}
    async with within(STEP):
        only = await client.predict("double", inputs, signature="two", output_filter=["diff"])
        with pytest.raises(InvalidArgumentError, match="output tensor alias not found"):
            await client.predict("double", inputs, signature="two", output_filter=["nope"])
    assert list(only) == ["diff"]


async def test_percent_encoded_model_name(client: Client) -> None:
    async with within(STEP):
        result = await client.predict(ODD_NAME, {"x": X})
        statuses = await client.status(ODD_NAME)
        metadata = await client.metadata(ODD_NAME)
    np.testing.assert_array_equal(result.output, X * 2 + 1)
    assert [s.version for s in statuses] == [1]
    assert metadata.model.name == ODD_NAME


async def test_classify_and_regress_from_plain_features(client: Client) -> None:
    async with within(STEP):
        classified = await client.classify(
            "half_plus_two", [{"x": 1.0}, {"x": 4.0}], signature="classify_x_to_y"
        )
        regressed = await client.regress(
            "half_plus_two", [{"x": 1.0}, {"x": 4.0}], signature="regress_x_to_y"
        )
    assert classified.classes == [[("", 2.5)], [("", 4.0)]]
    assert regressed.values.dtype == np.float32
    np.testing.assert_array_equal(regressed.values, [2.5, 4.0])


async def test_multi_inference_over_grpc(server: ModelServer) -> None:
    async with Client(target_of(server, "grpc"), timeout=STEP) as client:
        result = await client.multi_inference(
            "half_plus_two",
            [{"x": 2.0}],
            tasks={"regress_x_to_y": "regress", "classify_x_to_y": "classify"},
        )
    regressed, classified = result.results
    assert isinstance(regressed, RegressResult)
    assert isinstance(classified, ClassifyResult)
    np.testing.assert_array_equal(regressed.values, [3.0])
    assert classified.classes == [[("", 3.0)]]


async def test_grpc_only_calls_fail_over_http_before_sending(server: ModelServer) -> None:
    async with Client(target_of(server, "http"), timeout=STEP) as client:
        calls = server.faults.calls if server.faults else 0
        with pytest.raises(UnimplementedError, match="REST"):
            await client.multi_inference("half_plus_two", [{"x": 2.0}], tasks={"r": "regress"})
        with pytest.raises(UnimplementedError, match="REST"):
            await client.reload_config("model_config_list {}")
        assert server.faults is not None
        assert server.faults.calls == calls  # nothing reached the server


async def test_metadata_is_typed_and_identical_over_both_protocols(server: ModelServer) -> None:
    answers = []
    for protocol in ("grpc", "http"):
        async with Client(target_of(server, protocol), timeout=STEP) as client:
            answers.append(await client.metadata("half_plus_two"))
    grpc_md, http_md = answers
    assert grpc_md == http_md
    sig = grpc_md.signature()
    assert sig.method_name == "tensorflow/serving/predict"
    assert sig.inputs["x"].dtype == "DT_FLOAT"
    assert sig.inputs["x"].numpy_dtype == np.float32
    assert set(grpc_md.signatures) >= {"serving_default", "regress_x_to_y", "classify_x_to_y"}
    assert grpc_md.model.version == 123


async def test_status_lists_versions_newest_first(client: Client) -> None:
    async with within(STEP):
        statuses = await client.status("double")
        one = await client.status("double", version=1)
    assert [s.version for s in statuses] == [2, 1]
    assert all(s.state is VersionState.AVAILABLE for s in statuses)
    assert [s.version for s in one] == [1]


async def test_validation_rejects_bad_inputs_before_sending(
    server: ModelServer, protocol: str
) -> None:
    async with Client(target_of(server, protocol), timeout=STEP, validate=True) as client:
        await client.metadata("half_plus_two")  # warm the cache
        assert server.faults is not None
        calls = server.faults.calls
        # half_plus_two declares x as DT_FLOAT [-1, 1].
        column = X.reshape(3, 1)
        with pytest.raises(InvalidInputError, match=r"expected \{x: DT_FLOAT shape \[-1, 1\]\}"):
            await client.predict("half_plus_two", {"z": column})
        # float64 takes the signature's float; another dtype is the caller's choice.
        with pytest.raises(InvalidInputError, match="cast=True"):
            await client.predict("half_plus_two", {"x": column.astype(np.int32)})
        with pytest.raises(InvalidInputError, match="shape"):
            await client.predict("half_plus_two", {"x": X.reshape(1, 3)})
        assert server.faults.calls == calls
        result = await client.predict("half_plus_two", {"x": column})
    np.testing.assert_array_equal(result["y"], [[2.5], [3.0], [4.5]])


async def test_cast_converts_to_the_signature_dtype(server: ModelServer, protocol: str) -> None:
    async with Client(target_of(server, protocol), timeout=STEP, cast=True) as client:
        result = await client.predict("half_plus_two", {"x": [[1.0], [2.0], [5.0]]})
    np.testing.assert_array_equal(result.output, [[2.5], [3.0], [4.5]])


async def test_with_options_shares_the_transport(server: ModelServer, protocol: str) -> None:
    async with Client(target_of(server, protocol), timeout=STEP) as client:
        fast = client.with_options(timeout=1.0, max_retries=0, metadata={"x-trace": "1"})
        assert fast.transport is client.transport
        assert fast.options.timeout == 1.0
        assert client.options.timeout == STEP
        result = await fast.predict("half_plus_two", X)
    np.testing.assert_array_equal(result["y"], [2.5, 3.0, 4.5])
    assert fast.closed


async def test_gzip_requests(server: ModelServer, protocol: str) -> None:
    async with Client(target_of(server, protocol), timeout=STEP, compress=True) as client:
        result = await client.predict("half_plus_two", {"x": X})
    np.testing.assert_array_equal(result.output, [2.5, 3.0, 4.5])


async def test_dns_target(server: ModelServer) -> None:
    async with Client(f"dns:///{server.grpc_target}", timeout=STEP) as client:
        await client.connect(timeout=STEP)
        result = await client.predict("half_plus_two", {"x": X})
    np.testing.assert_array_equal(result["y"], [2.5, 3.0, 4.5])


class CountingTransport(Transport):
    """A user's own transport: counts calls and hands them to a real one."""

    protocol = "counting"

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.calls: list[str] = []

    async def predict(self, request: PredictRequest, options: CallOptions) -> PredictResult:
        self.calls.append("predict")
        return await self.inner.predict(request, options)

    async def classify(self, request: ClassifyRequest, options: CallOptions) -> ClassifyResult:
        return await self.inner.classify(request, options)

    async def regress(self, request: RegressRequest, options: CallOptions) -> RegressResult:
        return await self.inner.regress(request, options)

    async def multi_inference(
        self, request: MultiInferenceRequest, options: CallOptions
    ) -> MultiInferenceResult:
        return await self.inner.multi_inference(request, options)

    async def get_model_metadata(self, model: ModelSpec, options: CallOptions) -> ModelMetadata:
        self.calls.append("metadata")
        return await self.inner.get_model_metadata(model, options)

    async def get_model_status(
        self, model: ModelSpec, options: CallOptions
    ) -> list[ModelVersionStatus]:
        return await self.inner.get_model_status(model, options)

    async def reload_config(self, config: Any, options: CallOptions) -> None:
        await self.inner.reload_config(config, options)

    async def aclose(self) -> None:
        self.calls.append("aclose")
        await self.inner.aclose()


async def test_a_custom_transport_plugs_in(server: ModelServer) -> None:
    transport = CountingTransport(GrpcTransport(server.grpc_target))
    async with Client(transport, timeout=STEP, metadata={"authorization": "t"}) as client:
        one = await client.predict("half_plus_two", X)
        two = await client.predict("half_plus_two", X)
    np.testing.assert_array_equal(one["y"], two["y"])
    # One metadata fetch (cached) to name the single input, then two predicts.
    assert transport.calls == ["metadata", "predict", "predict", "aclose"]
