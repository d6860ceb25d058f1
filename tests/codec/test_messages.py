"""Protobuf messages <-> tfs_async.types."""

from __future__ import annotations

import numpy as np
import pytest
from google.protobuf import any_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from tfs_async._grpc_methods import SIGNATURE_DEF_MAP_TYPE_URL
from tfs_async._proto import (
    classification_pb2,
    error_codes_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    meta_graph_pb2,
    model_pb2,
    regression_pb2,
    types_pb2,
)
from tfs_async.codec import messages
from tfs_async.errors import ResponseDecodeError
from tfs_async.types import (
    ClassifyRequest,
    ClassifyResult,
    InferenceTask,
    ModelSpec,
    MultiInferenceRequest,
    RegressResult,
    VersionState,
)

DT = types_pb2.DataType

specs = st.builds(
    ModelSpec,
    name=st.text(min_size=1, max_size=8),
    version=st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1),
    signature=st.none() | st.text(min_size=1, max_size=8),
) | st.builds(
    ModelSpec,
    name=st.text(min_size=1, max_size=8),
    label=st.text(min_size=1, max_size=8),
    signature=st.none() | st.text(min_size=1, max_size=8),
)


@settings(max_examples=60, deadline=None)
@given(spec=specs)
def test_property_model_spec_round_trips_through_the_wire(spec: ModelSpec) -> None:
    proto = messages.model_spec_to_proto(spec)
    wire = model_pb2.ModelSpec.FromString(proto.SerializeToString())
    assert messages.model_spec_from_proto(wire) == spec


def test_model_spec_fields() -> None:
    proto = messages.model_spec_to_proto(ModelSpec("m", label="canary"))
    assert proto.WhichOneof("version_choice") == "version_label"
    assert proto.version_label == "canary"
    assert not proto.signature_name
    # version 0 is a real version: the Int64Value wrapper keeps it present.
    proto = messages.model_spec_to_proto(ModelSpec("m", version=0))
    assert proto.HasField("version")
    assert messages.model_spec_from_proto(proto) == ModelSpec("m", version=0)
    assert messages.model_spec_from_proto(model_pb2.ModelSpec()) is None


def _signature_def() -> meta_graph_pb2.SignatureDef:
    sig = meta_graph_pb2.SignatureDef(method_name="tensorflow/serving/predict")
    x = sig.inputs["x"]
    x.name, x.dtype = "x:0", DT.DT_FLOAT
    x.tensor_shape.dim.add(size=-1)
    x.tensor_shape.dim.add(size=1)
    y = sig.outputs["y"]
    y.name, y.dtype = "y:0", DT.DT_STRING
    y.tensor_shape.unknown_rank = True
    r = sig.outputs["handle"]
    r.name, r.dtype = "h:0", DT.DT_RESOURCE
    return sig


def test_signature_from_proto() -> None:
    spec = messages.signature_from_proto("serving_default", _signature_def())
    assert spec.method_name == "tensorflow/serving/predict"
    x = spec.inputs["x"]
    assert (x.dtype, x.shape, x.tensor_name, x.numpy_dtype) == (
        "DT_FLOAT",
        (-1, 1),
        "x:0",
        np.dtype(np.float32),
    )
    assert spec.outputs["y"].shape is None
    assert spec.outputs["y"].numpy_dtype == np.dtype(object)
    # Declared but not carried by numpy: kept, without a numpy dtype.
    assert spec.outputs["handle"].dtype == "DT_RESOURCE"
    assert spec.outputs["handle"].numpy_dtype is None


def test_metadata_round_trip_through_the_hand_packed_any() -> None:
    sig_map = get_model_metadata_pb2.SignatureDefMap()
    sig_map.signature_def["serving_default"].CopyFrom(_signature_def())
    packed = messages.pack_signature_def_map(sig_map)
    assert packed.type_url == SIGNATURE_DEF_MAP_TYPE_URL
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = "m"
    response.model_spec.version.value = 4
    response.metadata["signature_def"].CopyFrom(packed)
    wire = get_model_metadata_pb2.GetModelMetadataResponse.FromString(response.SerializeToString())
    meta = messages.metadata_from_proto(wire)
    assert meta.model == ModelSpec("m", version=4)
    assert meta.signature().inputs["x"].shape == (-1, 1)


def test_metadata_with_a_foreign_any_is_refused() -> None:
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = "m"
    response.metadata["signature_def"].CopyFrom(
        any_pb2.Any(type_url="type.googleapis.com/tensorflow.Other", value=b"")
    )
    with pytest.raises(ResponseDecodeError, match=r"tensorflow\.Other"):
        messages.metadata_from_proto(response)
    del response.metadata["signature_def"]
    with pytest.raises(ResponseDecodeError, match="no 'signature_def'"):
        messages.metadata_from_proto(response)


def test_status_from_proto_keeps_order_and_errors() -> None:
    response = get_model_status_pb2.GetModelStatusResponse()
    ok = response.model_version_status.add(version=2, state=30)
    ok.status.error_code = error_codes_pb2.OK
    bad = response.model_version_status.add(version=1, state=50)
    bad.status.error_code = error_codes_pb2.INVALID_ARGUMENT
    bad.status.error_message = "load failed"
    statuses = messages.status_from_proto(response)
    assert [(s.version, s.state, s.error_code) for s in statuses] == [
        (2, VersionState.AVAILABLE, 0),
        (1, VersionState.END, 3),
    ]
    assert statuses[1].error_message == "load failed"


def test_classify_and_regress_results() -> None:
    response = classification_pb2.ClassificationResponse()
    response.model_spec.name = "m"
    response.model_spec.version.value = 1
    response.model_spec.signature_name = "cls"
    example = response.result.classifications.add()
    example.classes.add(label="cat", score=0.75)
    example.classes.add(label="dog", score=0.25)
    result = messages.classify_result_from_proto(response)
    assert result == ClassifyResult(
        model=ModelSpec("m", version=1, signature="cls"),
        classes=[[("cat", 0.75), ("dog", 0.25)]],
    )
    regress = regression_pb2.RegressionResponse()
    regress.result.regressions.add(value=0.5)
    regress.result.regressions.add(value=-1.5)
    values = messages.regress_result_from_proto(regress)
    assert values.model is None
    assert values.values.dtype == np.float32
    assert values.values.tolist() == [0.5, -1.5]


def test_multi_inference_results_in_task_order() -> None:
    response = inference_pb2.MultiInferenceResponse()
    first = response.results.add()
    first.model_spec.name = "m"
    first.regression_result.regressions.add(value=2.0)
    second = response.results.add()
    second.model_spec.name = "m"
    second.classification_result.classifications.add().classes.add(label="a", score=1.0)
    results = messages.multi_inference_result_from_proto(response).results
    assert isinstance(results[0], RegressResult)
    assert results[0].values.tolist() == [2.0]
    assert isinstance(results[1], ClassifyResult)
    assert results[1].classes == [[("a", 1.0)]]
    response.results.add()
    with pytest.raises(ResponseDecodeError, match="result 2"):
        messages.multi_inference_result_from_proto(response)


def test_request_builders() -> None:
    request = messages.classify_request_to_proto(
        ClassifyRequest(ModelSpec("m", signature="c"), [{"x": 1.0}], context={"k": "v"})
    )
    assert request.model_spec.signature_name == "c"
    assert request.input.WhichOneof("kind") == "example_list_with_context"
    multi = messages.multi_inference_request_to_proto(
        MultiInferenceRequest(
            tasks=[InferenceTask(ModelSpec("m", signature="r"), "regress")],
            examples=[{"x": 1.0}],
        )
    )
    assert multi.tasks[0].method_name == "tensorflow/serving/regress"
    assert multi.input.example_list.examples[0].features.feature["x"].float_list.value == [1.0]
    meta = messages.metadata_request_to_proto(ModelSpec("m", version=2))
    assert list(meta.metadata_field) == ["signature_def"]
    assert messages.status_request_to_proto(ModelSpec("m")).model_spec.name == "m"
