"""The prediction service: Predict, Classify, Regress, MultiInference and GetModelMetadata.

:class:`PredictionService` runs requests on the versions a
:class:`~tfs_async.testing.model_manager.ModelManager` resolves, as TF Serving's
PredictionService does (proto in, proto out), raising
:class:`~tfs_async.testing.status.ServingStatus` with TF Serving's code and
message on failure. The gRPC and REST faces sit on top.

>>> import asyncio
>>> from tfs_async._proto import predict_pb2, types_pb2
>>> from tfs_async.testing.model_manager import ModelManager
>>> from tfs_async.testing.models import PythonModel, signature
>>> double = signature(lambda t: {"y": t["x"] * 2}, inputs={"x": "DT_FLOAT"},
...                    outputs={"y": "DT_FLOAT"})
>>> async def demo():
...     models = ModelManager([PythonModel("m", {"serving_default": double})])
...     await models.start()
...     req = predict_pb2.PredictRequest()
...     req.model_spec.name = "m"
...     req.inputs["x"].dtype = types_pb2.DT_FLOAT
...     req.inputs["x"].float_val.append(21.0)
...     resp = await PredictionService(models).predict(req)
...     await models.stop()
...     return list(resp.outputs["y"].float_val), resp.model_spec.version.value
>>> asyncio.run(demo())
([42.0], 1)
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from google.protobuf import text_format

from tfs_async import _grpc_methods as _methods
from tfs_async._proto import (
    classification_pb2,
    get_model_metadata_pb2,
    inference_pb2,
    input_pb2,
    model_pb2,
    predict_pb2,
    regression_pb2,
    tensor_pb2,
    types_pb2,
)
from tfs_async.codec import dtypes
from tfs_async.codec.tensor import decode_tensor, encode_tensor
from tfs_async.errors import InvalidInputError, StatusCode, TFServingError
from tfs_async.testing.model_manager import LoadedVersion, ModelManager
from tfs_async.testing.models import (
    CLASSIFY_METHOD,
    PREDICT_METHOD,
    REGRESS_METHOD,
    Signature,
)
from tfs_async.testing.status import (
    ServingStatus,
    failed_precondition,
    invalid_argument,
    unimplemented,
)
from tfs_async.types import DEFAULT_SIGNATURE

__all__ = ["PredictionService"]

_SIGNATURE_DEF_FIELD = "signature_def"
_PREDICT_METHODS = (PREDICT_METHOD, CLASSIFY_METHOD, REGRESS_METHOD)


class PredictionService:
    """TF Serving's PredictionService over the versions ``models`` serves.

    Args:
        models: the model manager that resolves each request's ``ModelSpec``.
        tensor_content: Predict outputs in ``tensor_content`` instead of the typed
            ``*_val`` fields (``--enable_serialization_as_tensor_content``).
        enable_signature_method_name_check: TF Serving's
            ``--enable_signature_method_name_check`` (default off): Classify and
            Regress accept only signatures whose ``method_name`` is theirs, and
            Predict only predict/classify/regress ones. Off, a signature runs
            whenever its inputs and outputs fit (TF2 SavedModels export every
            signature as predict).
    """

    def __init__(
        self,
        models: ModelManager,
        *,
        tensor_content: bool = False,
        enable_signature_method_name_check: bool = False,
    ) -> None:
        self.models = models
        self.tensor_content = tensor_content
        self.enable_signature_method_name_check = enable_signature_method_name_check

    async def predict(
        self,
        request: predict_pb2.PredictRequest,
        *,
        timeout: float | None = None,
        tensor_content: bool | None = None,
    ) -> predict_pb2.PredictResponse:
        """PredictionService.Predict (predict_impl.cc / predict_util.cc)."""
        if not request.HasField("model_spec"):
            raise invalid_argument("Missing ModelSpec")
        servable = self.models.resolve(request.model_spec)
        key = request.model_spec.signature_name or DEFAULT_SIGNATURE
        sig = servable.functions.get(key)
        if sig is None:
            raise failed_precondition(f'Serving signature key "{key}" not found.')
        if self.enable_signature_method_name_check and sig.method_name not in _PREDICT_METHODS:
            # predict_util.cc VerifySignature.
            raise ServingStatus(
                StatusCode.INTERNAL,
                "Expected prediction signature method_name to be one of {"
                + ", ".join(_PREDICT_METHODS)
                + f"}}. Was: {sig.method_name}",
            )
        _check_input_aliases(request.inputs.keys(), sig.inputs.keys())
        outputs = _output_aliases(request.output_filter, sig.outputs.keys())
        inputs = _decode_inputs(request.inputs, sig)
        result = await self._run(servable, key, sig, inputs, timeout)
        as_content = self.tensor_content if tensor_content is None else tensor_content
        response = predict_pb2.PredictResponse()
        for alias in outputs:
            value = _output(result, alias, servable, key, sig)
            response.outputs[alias].CopyFrom(
                encode_tensor(value, name=alias, as_content=as_content)
            )
        _fill_model_spec(response.model_spec, servable, key)
        return response

    async def classify(
        self, request: classification_pb2.ClassificationRequest, *, timeout: float | None = None
    ) -> classification_pb2.ClassificationResponse:
        """PredictionService.Classify (classifier.cc)."""
        if not request.HasField("model_spec"):
            raise invalid_argument("Missing ModelSpec")
        servable = self.models.resolve(request.model_spec)
        key = request.model_spec.signature_name or DEFAULT_SIGNATURE
        sig = self._signature_for(servable, key, CLASSIFY_METHOD)
        result = await self._classify(servable, key, sig, request.input, timeout)
        response = classification_pb2.ClassificationResponse()
        response.result.CopyFrom(result)
        _fill_model_spec(response.model_spec, servable, key)
        return response

    async def regress(
        self, request: regression_pb2.RegressionRequest, *, timeout: float | None = None
    ) -> regression_pb2.RegressionResponse:
        """PredictionService.Regress (regressor.cc)."""
        if not request.HasField("model_spec"):
            raise invalid_argument("Missing ModelSpec")
        servable = self.models.resolve(request.model_spec)
        key = request.model_spec.signature_name or DEFAULT_SIGNATURE
        sig = self._signature_for(servable, key, REGRESS_METHOD)
        result = await self._regress(servable, key, sig, request.input, timeout)
        response = regression_pb2.RegressionResponse()
        response.result.CopyFrom(result)
        _fill_model_spec(response.model_spec, servable, key)
        return response

    async def multi_inference(
        self, request: inference_pb2.MultiInferenceRequest, *, timeout: float | None = None
    ) -> inference_pb2.MultiInferenceResponse:
        """PredictionService.MultiInference (multi_inference.cc): several signatures, one input."""
        if not request.tasks:
            raise invalid_argument("MultiInferenceRequest must have at least one task.")
        first = request.tasks[0].model_spec
        seen: set[str] = set()
        for task in request.tasks:
            if not task.model_spec.name:
                raise invalid_argument("Found ModelSpec with an empty model name.")
            if task.model_spec.name != first.name:
                raise invalid_argument(
                    "All ModelSpecs in a MultiInferenceRequest must access the same model name.",
                )
            sig_name = task.model_spec.signature_name or DEFAULT_SIGNATURE
            if sig_name in seen:
                raise invalid_argument(f"Duplicate evaluation of signature: {sig_name}")
            seen.add(sig_name)
        servable = self.models.resolve(first)
        response = inference_pb2.MultiInferenceResponse()
        for task in request.tasks:
            key = task.model_spec.signature_name or DEFAULT_SIGNATURE
            sig = servable.functions.get(key)
            if sig is None:
                raise invalid_argument(
                    f"Requested signature not found in model graph: {key}",
                )
            result = response.results.add()
            if task.method_name == CLASSIFY_METHOD:
                self._preprocess(sig, CLASSIFY_METHOD)
                result.classification_result.CopyFrom(
                    await self._classify(servable, key, sig, request.input, timeout)
                )
            elif task.method_name == REGRESS_METHOD:
                self._preprocess(sig, REGRESS_METHOD)
                result.regression_result.CopyFrom(
                    await self._regress(servable, key, sig, request.input, timeout)
                )
            else:
                raise unimplemented(
                    f"Unsupported signature method_name: {task.method_name}",
                )
            _fill_model_spec(result.model_spec, servable, key)
        return response

    async def get_model_metadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        """PredictionService.GetModelMetadata: the signature_def map, packed by hand."""
        if not request.HasField("model_spec"):
            raise invalid_argument("Missing ModelSpec")
        if not request.metadata_field:
            raise invalid_argument(
                "GetModelMetadataRequest must specify at least one metadata_field",
            )
        for name in request.metadata_field:
            if name != _SIGNATURE_DEF_FIELD:
                raise invalid_argument(f"Metadata field {name} is not supported")
        servable = self.models.resolve(request.model_spec)
        sig_map = get_model_metadata_pb2.SignatureDefMap()
        for key, proto in servable.signatures.items():
            sig_map.signature_def[key].CopyFrom(proto)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        packed = response.metadata[_SIGNATURE_DEF_FIELD]
        # Any.Pack would write our proto package into the type URL; TF clients expect TF's.
        packed.type_url = _methods.SIGNATURE_DEF_MAP_TYPE_URL
        packed.value = sig_map.SerializeToString(deterministic=True)
        return response

    # ------------------------------------------------------------------ internals

    def _signature_for(self, servable: LoadedVersion, key: str, method: str) -> Signature:
        """Get{Classification,Regression}SignatureDef (classifier.cc, regressor.cc)."""
        sig = servable.functions.get(key)
        if sig is None:
            raise invalid_argument(f"No signature was found with the name: {key}")
        self._preprocess(sig, method)
        return sig

    def _preprocess(self, sig: Signature, method: str) -> None:
        """PreProcessClassification / PreProcessRegression: does the signature fit?

        The method name counts only with ``enable_signature_method_name_check``;
        otherwise any signature with one input ``inputs`` and the outputs the
        method reads runs (a TF2 SavedModel exports its classify and regress
        signatures with the predict method name).
        """
        kind = "classification" if method == CLASSIFY_METHOD else "regression"
        if self.enable_signature_method_name_check and sig.method_name != method:
            raise invalid_argument(
                f"Expected {kind} signature method_name to be {method}. Was: {sig.method_name}",
            )
        if len(sig.inputs) != 1:
            raise invalid_argument("Expected one input Tensor.")
        if method == CLASSIFY_METHOD and len(sig.outputs) not in (1, 2):
            raise invalid_argument(f"Expected one or two output Tensors, found {len(sig.outputs)}")
        if method == REGRESS_METHOD and len(sig.outputs) != 1:
            raise invalid_argument("Expected one output Tensor.")
        if "inputs" not in sig.inputs:
            raise invalid_argument(f"No {kind} inputs found in SignatureDef: {_debug(sig)}")
        if method == CLASSIFY_METHOD and not {"classes", "scores"} & set(sig.outputs):
            raise invalid_argument(
                'Expected classification signature outputs to contain at least one of "classes" '
                f'or "scores". Signature was: {_debug(sig)}',
            )
        if method == REGRESS_METHOD and "outputs" not in sig.outputs:
            raise invalid_argument(f"No regression outputs found in SignatureDef: {_debug(sig)}")

    async def _run(
        self,
        servable: LoadedVersion,
        key: str,
        sig: Signature,
        inputs: dict[str, npt.NDArray[Any]],
        timeout: float | None,
    ) -> dict[str, npt.NDArray[Any]]:
        try:
            return await asyncio.wait_for(sig.call(inputs), timeout)
        except (TimeoutError, asyncio.TimeoutError):
            raise ServingStatus(StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded") from None
        except ServingStatus:
            raise
        except TFServingError as exc:
            raise ServingStatus(exc.code, exc.message) from None
        except Exception as exc:
            # A failing model function is a failed Session::Run: INTERNAL with its text.
            raise ServingStatus(
                StatusCode.INTERNAL,
                f"Model {servable.name} version {servable.version} signature {key}: "
                f"{type(exc).__name__}: {exc}",
            ) from None

    async def _classify(
        self,
        servable: LoadedVersion,
        key: str,
        sig: Signature,
        request_input: input_pb2.Input,
        timeout: float | None,
    ) -> classification_pb2.ClassificationResult:
        alias = "inputs"
        batch = _serialized_examples(request_input)
        result = await self._run(servable, key, sig, {alias: batch}, timeout)
        n = len(batch)
        classes = result.get("classes") if "classes" in sig.outputs else None
        scores = result.get("scores") if "scores" in sig.outputs else None
        if classes is None and scores is None:
            raise ServingStatus(
                StatusCode.INTERNAL,
                f"Model {servable.name} signature {key} returned neither classes nor scores",
            )
        for label, tensor in (("classes", classes), ("scores", scores)):
            if tensor is None:
                continue
            if tensor.ndim != 2:
                raise invalid_argument(
                    f"Expected Tensor shape: [batch_size num_classes] but got {_shape(tensor)}",
                )
            if tensor.shape[0] != n:
                raise invalid_argument(
                    f"Expected {label} output batch size of {n}. Got: {tensor.shape[0]}",
                )
        if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
            raise invalid_argument(
                f"Tensors class and score should match in dim_size(1). Got {classes.shape[1]} "
                f"vs. {scores.shape[1]}",
            )
        num_classes = (classes if classes is not None else scores).shape[1]  # type: ignore[union-attr]
        out = classification_pb2.ClassificationResult()
        for i in range(n):
            item = out.classifications.add()
            for c in range(num_classes):
                cls = item.classes.add()
                if classes is not None:
                    label_value = classes[i, c]
                    cls.label = (
                        label_value.decode("utf-8", "replace")
                        if isinstance(label_value, bytes)
                        else str(label_value)
                    )
                if scores is not None:
                    cls.score = float(scores[i, c])
        return out

    async def _regress(
        self,
        servable: LoadedVersion,
        key: str,
        sig: Signature,
        request_input: input_pb2.Input,
        timeout: float | None,
    ) -> regression_pb2.RegressionResult:
        alias = "inputs"
        batch = _serialized_examples(request_input)
        result = await self._run(servable, key, sig, {alias: batch}, timeout)
        values = _output(result, "outputs", servable, key, sig)
        n = len(batch)
        if not (values.ndim == 1 or (values.ndim == 2 and values.shape[1] == 1)):
            raise invalid_argument(
                "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] "
                f"but got {_shape(values)}",
            )
        if values.shape[0] != n:
            raise invalid_argument(
                f"Input batch size did not match output batch size: {n} vs. {values.shape[0]}",
            )
        out = regression_pb2.RegressionResult()
        for v in values.reshape(-1):
            out.regressions.add(value=float(v))
        return out


# ---------------------------------------------------------------------- helpers


def _fill_model_spec(spec: model_pb2.ModelSpec, servable: LoadedVersion, key: str) -> None:
    spec.name = servable.name
    spec.version.value = servable.version
    spec.signature_name = key


def _debug(sig: Signature) -> str:
    """The SignatureDef as C++'s ``DebugString`` prints it (protobuf text format)."""
    return text_format.MessageToString(sig.to_proto())


def _serialized_examples(request_input: input_pb2.Input) -> npt.NDArray[np.object_]:
    """The request's examples as TF feeds them: one serialized tf.Example per row.

    With a context, each row is the context's bytes followed by the example's:
    protobuf merge semantics, so the example's own features win.
    """
    kind = request_input.WhichOneof("kind")
    if kind == "example_list":
        rows = [ex.SerializeToString() for ex in request_input.example_list.examples]
    elif kind == "example_list_with_context":
        lc = request_input.example_list_with_context
        context = lc.context.SerializeToString()
        rows = [context + ex.SerializeToString() for ex in lc.examples]
    else:
        rows = []
    if not rows:
        raise invalid_argument("Input is empty.")
    batch = np.empty(len(rows), dtype=object)
    batch[:] = rows
    return batch


def _join(names: Any) -> str:
    return ",".join(sorted(names))


def _check_input_aliases(sent: Any, expected: Any) -> None:
    sent_set, expected_set = set(sent), set(expected)
    extra, missing = sent_set - expected_set, expected_set - sent_set
    if extra or missing:
        raise invalid_argument(
            f"input size does not match signature: {len(sent_set)}!={len(expected_set)} "
            f"len({{{_join(sent_set)}}}) != len({{{_join(expected_set)}}}). "
            f"Sent extra: {{{_join(extra)}}}. Missing but required: {{{_join(missing)}}}.",
        )


def _output_aliases(output_filter: Sequence[str], outputs: Any) -> list[str]:
    known = list(outputs)
    if not output_filter:
        return sorted(known)
    seen: set[str] = set()
    for alias in output_filter:
        if alias not in known:
            raise invalid_argument(
                f"output tensor alias not found in signature: {alias} Outputs expected to be "
                f"in the set {{{_join(known)}}}.",
            )
        if alias in seen:
            raise invalid_argument(f"duplicate output tensor alias: {alias}")
        seen.add(alias)
    return list(output_filter)


def _decode_inputs(
    inputs: Mapping[str, tensor_pb2.TensorProto], sig: Signature
) -> dict[str, npt.NDArray[Any]]:
    decoded: dict[str, npt.NDArray[Any]] = {}
    # TF feeds inputs in alias order; its dtype error names the feed's index.
    for index, alias in enumerate(sorted(inputs)):
        proto = inputs[alias]
        expected = sig.inputs[alias].dtype
        if proto.dtype != expected:
            raise invalid_argument(
                f"Expects arg[{index}] to be {dtypes.type_string(expected)} but "
                f"{dtypes.type_string(proto.dtype)} is provided",
            )
        try:
            decoded[alias] = decode_tensor(proto, name=alias, error=InvalidInputError)
        except TFServingError:
            raise invalid_argument(f"tensor parsing error: {alias}") from None
    return decoded


def _shape(value: npt.NDArray[Any]) -> str:
    return "[" + ",".join(str(d) for d in value.shape) + "]"


def _output(
    result: Mapping[str, npt.NDArray[Any]],
    alias: str,
    servable: LoadedVersion,
    key: str,
    sig: Signature,
) -> npt.NDArray[Any]:
    """An output the function returned, in the signature's declared dtype."""
    if alias not in result:
        raise ServingStatus(
            StatusCode.INTERNAL,
            f"Model {servable.name} version {servable.version} signature {key}: the function "
            f"returned no output {alias!r} (returned {sorted(result)})",
        )
    value = np.asarray(result[alias])
    declared = sig.outputs[alias].dtype if alias in sig.outputs else None
    if declared is None or declared == types_pb2.DT_STRING:
        return value
    try:
        want = dtypes.to_numpy_dtype(declared, name=alias)
        if value.dtype != want:
            if value.dtype.kind in "OSU":
                raise TypeError(f"got {value.dtype} values")
            value = value.astype(want)
    except (TypeError, ValueError, TFServingError) as exc:
        raise ServingStatus(
            StatusCode.INTERNAL,
            f"Model {servable.name} version {servable.version} signature {key}: output "
            f"{alias!r} must be {dtypes.type_string(declared)}: {exc}",
        ) from None
    return value
