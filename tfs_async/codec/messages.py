"""Protobuf messages <-> :mod:`tfs_async.types`.

Both the gRPC transport (reading answers) and the emulator (writing them) use
these, so the two sides agree by construction with TF Serving's protos.

>>> from tfs_async.types import ModelSpec
>>> p = model_spec_to_proto(ModelSpec("m", version=3, signature="sig"))
>>> p.version.value, p.signature_name
(3, 'sig')
>>> model_spec_from_proto(p)
ModelSpec(name='m', version=3, signature='sig')
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from google.protobuf import any_pb2

from tfs_async._grpc_methods import SIGNATURE_DEF_MAP_TYPE_URL
from tfs_async._proto import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    meta_graph_pb2,
    model_pb2,
    regression_pb2,
)
from tfs_async.codec import dtypes
from tfs_async.codec.example import encode_input
from tfs_async.errors import InvalidInputError, ResponseDecodeError
from tfs_async.types import (
    ClassifyRequest,
    ClassifyResult,
    InferenceTask,
    ModelMetadata,
    ModelSpec,
    ModelVersionStatus,
    MultiInferenceRequest,
    MultiInferenceResult,
    RegressRequest,
    RegressResult,
    SignatureSpec,
    TensorSpec,
    VersionState,
)

__all__ = [
    "classification_from_proto",
    "classify_request_to_proto",
    "classify_result_from_proto",
    "metadata_from_proto",
    "metadata_request_to_proto",
    "model_spec_from_proto",
    "model_spec_to_proto",
    "multi_inference_request_to_proto",
    "multi_inference_result_from_proto",
    "pack_signature_def_map",
    "regress_request_to_proto",
    "regress_result_from_proto",
    "regression_from_proto",
    "signature_from_proto",
    "status_from_proto",
    "status_request_to_proto",
    "tensor_spec_from_proto",
    "unpack_signature_def_map",
]

_SIGNATURE_DEF_MAP_NAME = "tensorflow.serving.SignatureDefMap"


def model_spec_to_proto(spec: ModelSpec) -> model_pb2.ModelSpec:
    """``ModelSpec`` -> proto: version as an ``Int64Value``, label as ``version_label``."""
    proto = model_pb2.ModelSpec(name=spec.name)
    if spec.version is not None:
        proto.version.value = spec.version
    elif spec.label is not None:
        proto.version_label = spec.label
    if spec.signature is not None:
        proto.signature_name = spec.signature
    return proto


def model_spec_from_proto(proto: model_pb2.ModelSpec | None) -> ModelSpec | None:
    """Proto -> ``ModelSpec``; ``None`` when the message is absent or has no name."""
    if proto is None or not proto.name:
        return None
    choice = proto.WhichOneof("version_choice")
    return ModelSpec(
        proto.name,
        version=proto.version.value if choice == "version" else None,
        label=proto.version_label if choice == "version_label" else None,
        signature=proto.signature_name or None,
    )


def _shape_from_proto(info: meta_graph_pb2.TensorInfo) -> tuple[int, ...] | None:
    if info.tensor_shape.unknown_rank:
        return None
    return tuple(int(d.size) for d in info.tensor_shape.dim)


def tensor_spec_from_proto(alias: str, info: meta_graph_pb2.TensorInfo) -> TensorSpec:
    """A signature input/output: its alias, dtype name, shape (``None``: unknown rank)."""
    try:
        numpy_dtype = dtypes.to_numpy_dtype(info.dtype, name=alias)
    except InvalidInputError:
        numpy_dtype = None  # e.g. DT_RESOURCE, DT_VARIANT: declared but not carried
    return TensorSpec(
        name=alias,
        dtype=dtypes.datatype_name(info.dtype),
        shape=_shape_from_proto(info),
        tensor_name=info.name or info.coo_sparse.values_tensor_name,
        numpy_dtype=numpy_dtype,
    )


def signature_from_proto(name: str, signature: meta_graph_pb2.SignatureDef) -> SignatureSpec:
    """A ``SignatureDef`` as a :class:`SignatureSpec` (inputs and outputs sorted by alias)."""
    ins, outs = signature.inputs, signature.outputs
    return SignatureSpec(
        name=name,
        method_name=signature.method_name,
        inputs={k: tensor_spec_from_proto(k, ins[k]) for k in sorted(ins)},
        outputs={k: tensor_spec_from_proto(k, outs[k]) for k in sorted(outs)},
    )


def pack_signature_def_map(sig_map: get_model_metadata_pb2.SignatureDefMap) -> any_pb2.Any:
    """Wrap a ``SignatureDefMap`` in an ``Any`` with TF Serving's type URL.

    ``Any.Pack`` would write our private proto package into the URL, hence by hand.
    """
    return any_pb2.Any(type_url=SIGNATURE_DEF_MAP_TYPE_URL, value=sig_map.SerializeToString())


def unpack_signature_def_map(packed: any_pb2.Any) -> get_model_metadata_pb2.SignatureDefMap:
    """The ``SignatureDefMap`` inside ``packed``; :class:`ResponseDecodeError` if it is not one."""
    if not packed.type_url.endswith(_SIGNATURE_DEF_MAP_NAME):
        raise ResponseDecodeError(
            f"metadata 'signature_def' holds {packed.type_url!r}, expected a "
            f"{_SIGNATURE_DEF_MAP_NAME}"
        )
    try:
        return get_model_metadata_pb2.SignatureDefMap.FromString(packed.value)
    except Exception as exc:  # protobuf raises DecodeError, a bare Exception subclass
        raise ResponseDecodeError(f"metadata 'signature_def' does not parse: {exc}") from None


def metadata_from_proto(response: get_model_metadata_pb2.GetModelMetadataResponse) -> ModelMetadata:
    """GetModelMetadata's answer as :class:`ModelMetadata` (signatures sorted by name)."""
    model = model_spec_from_proto(response.model_spec)
    if model is None:
        raise ResponseDecodeError("GetModelMetadata response has no model_spec name")
    if "signature_def" not in response.metadata:
        raise ResponseDecodeError(
            f"GetModelMetadata response for {model} has no 'signature_def' metadata "
            f"(got {sorted(response.metadata)})"
        )
    sig_map = unpack_signature_def_map(response.metadata["signature_def"]).signature_def
    return ModelMetadata(
        model=model,
        signatures={k: signature_from_proto(k, sig_map[k]) for k in sorted(sig_map)},
    )


def _state(value: int) -> VersionState:
    try:
        return VersionState(value)
    except ValueError:
        return VersionState.UNKNOWN


def status_from_proto(
    response: get_model_status_pb2.GetModelStatusResponse,
) -> list[ModelVersionStatus]:
    """GetModelStatus's answer, one entry per version, in the server's order."""
    return [
        ModelVersionStatus(
            version=int(v.version),
            state=_state(v.state),
            error_code=int(v.status.error_code),
            error_message=v.status.error_message,
        )
        for v in response.model_version_status
    ]


def classification_from_proto(
    result: classification_pb2.ClassificationResult, model: ModelSpec | None = None
) -> ClassifyResult:
    """A ``ClassificationResult``: per example, its (label, score) pairs."""
    return ClassifyResult(
        model=model,
        classes=[
            [(c.label, float(c.score)) for c in item.classes] for item in result.classifications
        ],
    )


def regression_from_proto(
    result: regression_pb2.RegressionResult, model: ModelSpec | None = None
) -> RegressResult:
    """A ``RegressionResult``: one float32 per example."""
    values = np.array([r.value for r in result.regressions], dtype=np.float32)
    return RegressResult(model=model, values=values)


def classify_result_from_proto(
    response: classification_pb2.ClassificationResponse,
) -> ClassifyResult:
    """Classify's answer, with the model spec the server resolved."""
    return classification_from_proto(response.result, model_spec_from_proto(response.model_spec))


def regress_result_from_proto(response: regression_pb2.RegressionResponse) -> RegressResult:
    """Regress's answer, with the model spec the server resolved."""
    return regression_from_proto(response.result, model_spec_from_proto(response.model_spec))


def multi_inference_result_from_proto(
    response: inference_pb2.MultiInferenceResponse,
) -> MultiInferenceResult:
    """MultiInference's answer: one classify or regress result per task, in order."""
    results: list[ClassifyResult | RegressResult] = []
    for i, item in enumerate(response.results):
        model = model_spec_from_proto(item.model_spec)
        which = item.WhichOneof("result")
        if which == "classification_result":
            results.append(classification_from_proto(item.classification_result, model))
        elif which == "regression_result":
            results.append(regression_from_proto(item.regression_result, model))
        else:
            raise ResponseDecodeError(f"MultiInference result {i} holds neither result kind")
    return MultiInferenceResult(results=results)


def classify_request_to_proto(request: ClassifyRequest) -> classification_pb2.ClassificationRequest:
    """A :class:`ClassifyRequest` as the gRPC message (examples validated per feature)."""
    return classification_pb2.ClassificationRequest(
        model_spec=model_spec_to_proto(request.model),
        input=encode_input(request.examples, request.context),
    )


def regress_request_to_proto(request: RegressRequest) -> regression_pb2.RegressionRequest:
    """A :class:`RegressRequest` as the gRPC message (examples validated per feature)."""
    return regression_pb2.RegressionRequest(
        model_spec=model_spec_to_proto(request.model),
        input=encode_input(request.examples, request.context),
    )


def _task_to_proto(task: InferenceTask) -> inference_pb2.InferenceTask:
    return inference_pb2.InferenceTask(
        model_spec=model_spec_to_proto(task.model), method_name=task.method_name
    )


def multi_inference_request_to_proto(
    request: MultiInferenceRequest,
) -> inference_pb2.MultiInferenceRequest:
    """A :class:`MultiInferenceRequest` as the gRPC message."""
    return inference_pb2.MultiInferenceRequest(
        tasks=[_task_to_proto(t) for t in request.tasks],
        input=encode_input(request.examples, request.context),
    )


def metadata_request_to_proto(
    model: ModelSpec, fields: Sequence[str] = ("signature_def",)
) -> get_model_metadata_pb2.GetModelMetadataRequest:
    """GetModelMetadata's request; TF Serving supports only the ``signature_def`` field."""
    return get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec=model_spec_to_proto(model), metadata_field=list(fields)
    )


def status_request_to_proto(model: ModelSpec) -> get_model_status_pb2.GetModelStatusRequest:
    """GetModelStatus's request (the server ignores labels and signatures)."""
    return get_model_status_pb2.GetModelStatusRequest(model_spec=model_spec_to_proto(model))
