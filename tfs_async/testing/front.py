"""What the gRPC and REST faces call instead of the core when the server models more than it.

:class:`ServingFront` stands in front of a
:class:`~tfs_async.testing.serving.ServerCore` and forwards every attribute to it,
except the inference calls, where it adds, as configured:

* server-side batching of Predict (:mod:`tfs_async.testing.batch_scheduler`);
* the emulated device's cost (:mod:`tfs_async.testing.device_model`);
* the request metrics TF Serving's gRPC prediction service records
  (:mod:`tfs_async.testing.monitoring`; the REST face records its own).

A request the batcher cannot place (unknown model, signature or input) goes
straight to the core, which answers it with TF Serving's validation error.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from tfs_async._proto import (
    classification_pb2,
    inference_pb2,
    predict_pb2,
    regression_pb2,
)
from tfs_async.errors import StatusCode
from tfs_async.testing.batch_scheduler import SharedBatchScheduler
from tfs_async.testing.device_model import DeviceModel
from tfs_async.testing.monitoring import Metrics
from tfs_async.testing.status import ServingStatus

if TYPE_CHECKING:
    from tfs_async.testing.serving import ServerCore

__all__ = ["ServingFront"]

T = TypeVar("T")

_DEFAULT_SIGNATURE = "serving_default"


class ServingFront:
    """A :class:`ServerCore` look-alike adding batching, device cost and gRPC metrics.

    Args:
        core: the core that answers every call.
        scheduler: batches Predict calls when given.
        device: charged per Predict (per batch with ``scheduler``) when given.
        metrics: records gRPC-style ``request_count`` / ``request_latency`` when given.
        entrypoint: the ``entrypoint`` label of ``request_latency`` (``"GRPC"``).
    """

    def __init__(
        self,
        core: ServerCore,
        *,
        scheduler: SharedBatchScheduler | None = None,
        device: DeviceModel | None = None,
        metrics: Metrics | None = None,
        entrypoint: str = "GRPC",
    ) -> None:
        self._core = core
        self._scheduler = scheduler
        self._device = device
        self._metrics = metrics
        self._entrypoint = entrypoint

    def as_core(self) -> ServerCore:
        """This front, typed as the core it stands for (it answers the same calls)."""
        return cast("ServerCore", self)

    @property
    def prediction(self) -> ServingFront:
        """The faces call ``core.prediction.<rpc>``: the front answers those calls itself."""
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self._core, name)

    # -- inference ---------------------------------------------------------

    async def predict(
        self,
        request: predict_pb2.PredictRequest,
        *,
        timeout: float | None = None,
        tensor_content: bool | None = None,
    ) -> predict_pb2.PredictResponse:
        """PredictionService.Predict through the batcher and device model."""

        def run(remaining: float | None) -> Awaitable[predict_pb2.PredictResponse]:
            return self._core.predict(request, timeout=remaining, tensor_content=tensor_content)

        return await self._measured(
            "Predict", request.model_spec.name, lambda: self._predict(request, run, timeout)
        )

    async def classify(
        self, request: classification_pb2.ClassificationRequest, *, timeout: float | None = None
    ) -> classification_pb2.ClassificationResponse:
        """PredictionService.Classify (measured)."""
        return await self._measured(
            "Classify",
            request.model_spec.name,
            lambda: self._core.classify(request, timeout=timeout),
        )

    async def regress(
        self, request: regression_pb2.RegressionRequest, *, timeout: float | None = None
    ) -> regression_pb2.RegressionResponse:
        """PredictionService.Regress (measured)."""
        return await self._measured(
            "Regress",
            request.model_spec.name,
            lambda: self._core.regress(request, timeout=timeout),
        )

    async def multi_inference(
        self, request: inference_pb2.MultiInferenceRequest, *, timeout: float | None = None
    ) -> inference_pb2.MultiInferenceResponse:
        """PredictionService.MultiInference (its example count is recorded, like TF's)."""
        response = await self._core.multi_inference(request, timeout=timeout)
        if self._metrics is not None and request.tasks:
            which = request.input.WhichOneof("kind")
            examples = getattr(request.input, which).examples if which else ()
            self._metrics.example_count(request.tasks[0].model_spec.name, len(examples))
        return response

    # -- internals ---------------------------------------------------------

    async def _measured(self, api: str, model: str, call: Callable[[], Awaitable[T]]) -> T:
        if self._metrics is None:
            return await call()
        start = time.perf_counter()
        try:
            result = await call()
        except ServingStatus as status:
            self._metrics.count_request(model, status.code.name)
            raise
        except Exception:
            self._metrics.count_request(model, StatusCode.INTERNAL.name)
            raise
        self._metrics.count_request(model, StatusCode.OK.name)
        self._metrics.request_latency(
            model, api, self._entrypoint, (time.perf_counter() - start) * 1e6
        )
        return result

    async def _predict(
        self,
        request: predict_pb2.PredictRequest,
        run: Callable[[float | None], Awaitable[predict_pb2.PredictResponse]],
        timeout: float | None,
    ) -> predict_pb2.PredictResponse:
        if self._scheduler is None and self._device is None:
            return await run(timeout)
        placed = self._place(request)
        if placed is None:
            return await run(timeout)
        key, shapes = placed
        if self._scheduler is not None:
            result: predict_pb2.PredictResponse = await self._scheduler.schedule(
                key, shapes, run, timeout
            )
            return result
        assert self._device is not None
        start = time.monotonic()
        rows = next((shape[0] for shape in shapes.values() if shape), 1)
        await self._device.run(rows)
        remaining = None if timeout is None else max(0.0, timeout - (time.monotonic() - start))
        return await run(remaining)

    def _place(
        self, request: predict_pb2.PredictRequest
    ) -> tuple[tuple[Any, ...], dict[str, tuple[int, ...]]] | None:
        """The batching queue key and input shapes, or None to let the core answer."""
        if not request.HasField("model_spec"):
            return None
        try:
            servable = self._core.resolve(request.model_spec)
        except ServingStatus:
            return None
        signature_name = request.model_spec.signature_name or _DEFAULT_SIGNATURE
        signature = servable.signatures.get(signature_name)
        if signature is None or not set(request.inputs) <= set(signature.inputs):
            return None
        shapes = {
            alias: tuple(int(dim.size) for dim in tensor.tensor_shape.dim)
            for alias, tensor in request.inputs.items()
        }
        # BatchingSession keeps one queue per signature: input and output tensor names.
        key = (
            servable.name,
            servable.version,
            signature_name,
            tuple(sorted(request.inputs)),
            tuple(sorted(request.output_filter)),
        )
        return key, shapes
