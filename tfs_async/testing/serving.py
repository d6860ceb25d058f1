"""``ServerCore``: a :class:`ModelManager` with its :class:`PredictionService` attached.

What :class:`~tfs_async.testing.server.ModelServer` and the gRPC and REST
faces serve: the models (:class:`~tfs_async.testing.model_manager.ModelManager`)
and the service that runs them
(:attr:`ServerCore.prediction`, a
:class:`~tfs_async.testing.prediction_service.PredictionService`). The
prediction RPCs are also methods here, so one object answers every RPC as
TF Serving does (the name is TF Serving's).

>>> import asyncio
>>> from tfs_async._proto import predict_pb2, types_pb2
>>> from tfs_async.testing.models import PythonModel, signature
>>> double = signature(lambda t: {"y": t["x"] * 2}, inputs={"x": "DT_FLOAT"},
...                    outputs={"y": "DT_FLOAT"})
>>> async def demo():
...     core = ServerCore([PythonModel("m", {"serving_default": double})])
...     await core.start()
...     req = predict_pb2.PredictRequest()
...     req.model_spec.name = "m"
...     req.inputs["x"].dtype = types_pb2.DT_FLOAT
...     req.inputs["x"].float_val.append(21.0)
...     resp = await core.predict(req)
...     await core.stop()
...     return list(resp.outputs["y"].float_val), resp.model_spec.version.value
>>> asyncio.run(demo())
([42.0], 1)
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from tfs_async._proto import (
    classification_pb2,
    get_model_metadata_pb2,
    inference_pb2,
    predict_pb2,
    regression_pb2,
)
from tfs_async.testing.model_manager import ModelManager, ModelServerConfig
from tfs_async.testing.models import ModelSource
from tfs_async.testing.prediction_service import PredictionService

__all__ = ["ServerCore"]


class ServerCore(ModelManager):
    """The served models and their prediction service, as one object.

    Takes :class:`~tfs_async.testing.model_manager.ModelManager`'s arguments plus
    ``tensor_content`` (Predict outputs in ``tensor_content`` instead of the
    typed ``*_val`` fields: ``--enable_serialization_as_tensor_content``) and
    ``enable_signature_method_name_check`` (TF Serving's flag of that name,
    default off: see :class:`~tfs_async.testing.prediction_service.PredictionService`).
    """

    def __init__(
        self,
        models: Sequence[ModelSource] = (),
        *,
        config: ModelServerConfig | str | None = None,
        config_file: str | os.PathLike[str] | None = None,
        tensor_content: bool = False,
        enable_signature_method_name_check: bool = False,
        allow_version_labels_for_unavailable_models: bool = False,
        load_delay: float = 0.0,
        file_system_poll_wait_seconds: float = 1.0,
        prefer_tflite_model: bool = False,
    ) -> None:
        super().__init__(
            models,
            config=config,
            config_file=config_file,
            allow_version_labels_for_unavailable_models=allow_version_labels_for_unavailable_models,
            load_delay=load_delay,
            file_system_poll_wait_seconds=file_system_poll_wait_seconds,
            prefer_tflite_model=prefer_tflite_model,
        )
        self.prediction = PredictionService(
            self,
            tensor_content=tensor_content,
            enable_signature_method_name_check=enable_signature_method_name_check,
        )

    @property
    def tensor_content(self) -> bool:
        """Whether Predict outputs go in ``tensor_content`` (the prediction service's setting)."""
        return self.prediction.tensor_content

    @tensor_content.setter
    def tensor_content(self, value: bool) -> None:
        self.prediction.tensor_content = value

    async def predict(
        self,
        request: predict_pb2.PredictRequest,
        *,
        timeout: float | None = None,
        tensor_content: bool | None = None,
    ) -> predict_pb2.PredictResponse:
        """PredictionService.Predict."""
        return await self.prediction.predict(
            request, timeout=timeout, tensor_content=tensor_content
        )

    async def classify(
        self, request: classification_pb2.ClassificationRequest, *, timeout: float | None = None
    ) -> classification_pb2.ClassificationResponse:
        """PredictionService.Classify."""
        return await self.prediction.classify(request, timeout=timeout)

    async def regress(
        self, request: regression_pb2.RegressionRequest, *, timeout: float | None = None
    ) -> regression_pb2.RegressionResponse:
        """PredictionService.Regress."""
        return await self.prediction.regress(request, timeout=timeout)

    async def multi_inference(
        self, request: inference_pb2.MultiInferenceRequest, *, timeout: float | None = None
    ) -> inference_pb2.MultiInferenceResponse:
        """PredictionService.MultiInference."""
        return await self.prediction.multi_inference(request, timeout=timeout)

    async def get_model_metadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        """PredictionService.GetModelMetadata."""
        return await self.prediction.get_model_metadata(request)
