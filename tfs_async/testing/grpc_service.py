"""The emulator's gRPC face: TF Serving's PredictionService and ModelService on grpc.aio.

Handlers are registered generically under TF Serving's service names and method
paths (:mod:`tfs_async._grpc_methods`) and (de)serialize with this package's own
protobuf classes, which share TF's field numbers. Each call goes through the
fault plan, then the :class:`~tfs_async.testing.serving.ServerCore`; a
:class:`~tfs_async.testing.status.ServingStatus` becomes the gRPC status with
TF Serving's code and its message cut at 1024 bytes.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import grpc
import grpc.aio
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

from tfs_async import _grpc_methods as _methods
from tfs_async._proto import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    predict_pb2,
    regression_pb2,
)
from tfs_async.testing.faults import ConnectionDropped, FaultPlan
from tfs_async.testing.status import ServingStatus

if TYPE_CHECKING:
    from tfs_async.testing.profiler import ProfilerService
    from tfs_async.testing.serving import ServerCore

__all__ = [
    "GRPC_SERVER_OPTIONS",
    "HEALTH_SERVICE",
    "MESSAGE_LIMIT",
    "build_handlers",
    "build_health_handler",
    "health_messages",
    "truncate_message",
]

_log = logging.getLogger(__name__)

#: TF Serving cuts gRPC error messages at this many bytes (model_servers/grpc_status_util.cc).
MESSAGE_LIMIT = 1024

#: TF Serving receives up to INT32_MAX bytes and leaves the send limit unlimited.
GRPC_SERVER_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.max_receive_message_length", 2**31 - 1),
    ("grpc.max_send_message_length", -1),
    # A restarted server must own its port alone, never share it with a stale listener.
    ("grpc.so_reuseport", 0),
    # gRPC core holds calls that arrived before the (asyncio) server asked for them in a
    # queue and cancels new ones at random past 1,000 and all past 3,000 (its
    # random-early-detection defaults): a burst of a few thousand calls on one client
    # saw CANCELLED. The emulator queues them instead; the client's deadlines bound them.
    ("grpc.server.max_pending_requests", 100_000),
    ("grpc.server.max_pending_requests_hard_limit", 100_000),
)


def truncate_message(message: str) -> str:
    """``message`` cut at 1024 UTF-8 bytes plus ``...TRUNCATED``, as TF Serving sends it.

    >>> truncate_message("short")
    'short'
    >>> m = truncate_message("x" * 2000)
    >>> len(m), m[-12:]
    (1036, '...TRUNCATED')
    """
    raw = message.encode("utf-8")
    if len(raw) <= MESSAGE_LIMIT:
        return message
    # A cut inside a multi-byte character drops that character's partial bytes.
    return raw[:MESSAGE_LIMIT].decode("utf-8", errors="ignore") + "...TRUNCATED"


class _Message(Protocol):
    def SerializeToString(self, *, deterministic: bool = ...) -> bytes: ...


Resp = TypeVar("Resp", bound=_Message)


def _model_name(request: Any) -> str | None:
    """The model a request names, for fault selectors (None when it names none)."""
    if request.HasField("model_spec"):
        name: str = request.model_spec.name
        return name
    return None


class _Handlers:
    """The gRPC method implementations bound to one server's models, predictions and faults."""

    def __init__(
        self,
        core: ServerCore,
        faults: Callable[[], FaultPlan | None],
        trace: ProfilerService | None = None,
    ) -> None:
        self._models = core
        self._prediction = core.prediction
        self._faults = faults
        self._trace = trace

    async def _run(
        self,
        method: str,
        model: str | None,
        context: grpc.aio.ServicerContext[Any, Any],
        call: Callable[[float | None], Awaitable[Resp]],
    ) -> Resp:
        trace = self._trace
        # A call is traced when it starts while a profiling session runs (TSL's TraceMe).
        start = time.time_ns() if trace is not None and trace.active else None
        code = "OK"
        plan = self._faults()
        try:
            if plan is not None:
                await plan.apply("grpc", method, model)
            # The client's deadline becomes the prediction's run timeout, as in TF Serving.
            return await call(context.time_remaining())
        except ServingStatus as status:
            code = status.code.name
            await context.abort(grpc.StatusCode[code], truncate_message(status.message))
        except ConnectionDropped as dropped:
            code = "UNAVAILABLE"
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(dropped))
        except asyncio.CancelledError:
            code = "CANCELLED"
            raise
        except Exception as exc:
            # A bug or a model's own exception: INTERNAL with the reason, as REST answers it.
            code = "INTERNAL"
            _log.exception("gRPC %s failed", method)
            await context.abort(
                grpc.StatusCode.INTERNAL, truncate_message(f"{type(exc).__name__}: {exc}")
            )
        finally:
            if trace is not None and start is not None:
                trace.record("gRPC", method, model or "", code, start)
        raise AssertionError("unreachable: context.abort raises")  # pragma: no cover

    async def predict(
        self, request: predict_pb2.PredictRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> predict_pb2.PredictResponse:
        return await self._run(
            "predict",
            _model_name(request),
            context,
            lambda timeout: self._prediction.predict(request, timeout=timeout),
        )

    async def classify(
        self,
        request: classification_pb2.ClassificationRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> classification_pb2.ClassificationResponse:
        return await self._run(
            "classify",
            _model_name(request),
            context,
            lambda timeout: self._prediction.classify(request, timeout=timeout),
        )

    async def regress(
        self, request: regression_pb2.RegressionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> regression_pb2.RegressionResponse:
        return await self._run(
            "regress",
            _model_name(request),
            context,
            lambda timeout: self._prediction.regress(request, timeout=timeout),
        )

    async def multi_inference(
        self,
        request: inference_pb2.MultiInferenceRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> inference_pb2.MultiInferenceResponse:
        model = request.tasks[0].model_spec.name if request.tasks else None
        return await self._run(
            "multi_inference",
            model,
            context,
            lambda timeout: self._prediction.multi_inference(request, timeout=timeout),
        )

    async def get_model_metadata(
        self,
        request: get_model_metadata_pb2.GetModelMetadataRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        return await self._run(
            "get_model_metadata",
            _model_name(request),
            context,
            lambda _timeout: self._prediction.get_model_metadata(request),
        )

    async def get_model_status(
        self,
        request: get_model_status_pb2.GetModelStatusRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> get_model_status_pb2.GetModelStatusResponse:
        return await self._run(
            "get_model_status",
            _model_name(request),
            context,
            lambda _timeout: self._models.get_model_status(request),
        )

    async def reload_config(
        self,
        request: model_management_pb2.ReloadConfigRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> model_management_pb2.ReloadConfigResponse:
        return await self._run(
            "reload_config",
            None,
            context,
            lambda _timeout: self._models.reload_config(request),
        )


def _unary(
    behavior: Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]],
    request_type: Any,
) -> grpc.RpcMethodHandler:
    return grpc.unary_unary_rpc_method_handler(
        behavior,
        request_deserializer=request_type.FromString,
        response_serializer=lambda message: message.SerializeToString(),
    )


def _method_name(path: str) -> str:
    """``/pkg.Service/Method`` -> ``Method``."""
    return path.rsplit("/", 1)[1]


def build_handlers(
    core: ServerCore,
    faults: Callable[[], FaultPlan | None] = lambda: None,
    trace: ProfilerService | None = None,
) -> list[grpc.GenericRpcHandler]:
    """Generic handlers for TF Serving's two services, served by ``core``.

    ``faults`` is called on every request and returns the fault plan in force
    (or None), so the plan can be swapped while the server runs. ``trace``, when
    given, is told of every call answered while a profiling session runs.
    """
    h = _Handlers(core, faults, trace)
    prediction = {
        _method_name(_methods.PREDICT): _unary(h.predict, predict_pb2.PredictRequest),
        _method_name(_methods.CLASSIFY): _unary(
            h.classify, classification_pb2.ClassificationRequest
        ),
        _method_name(_methods.REGRESS): _unary(h.regress, regression_pb2.RegressionRequest),
        _method_name(_methods.MULTI_INFERENCE): _unary(
            h.multi_inference, inference_pb2.MultiInferenceRequest
        ),
        _method_name(_methods.GET_MODEL_METADATA): _unary(
            h.get_model_metadata, get_model_metadata_pb2.GetModelMetadataRequest
        ),
    }
    model = {
        _method_name(_methods.GET_MODEL_STATUS): _unary(
            h.get_model_status, get_model_status_pb2.GetModelStatusRequest
        ),
        _method_name(_methods.HANDLE_RELOAD_CONFIG): _unary(
            h.reload_config, model_management_pb2.ReloadConfigRequest
        ),
    }
    return [
        grpc.method_handlers_generic_handler(_methods.PREDICTION_SERVICE, prediction),
        grpc.method_handlers_generic_handler(_methods.MODEL_SERVICE, model),
    ]


# -- grpc.health.v1 (TF Serving's --enable_grpc_healthcheck_service) -----------

HEALTH_SERVICE = "grpc.health.v1.Health"

# Services TF Serving marks SERVING: the empty name (whole server) and the short names.
_HEALTHY_SERVICES = frozenset({"", "ModelService", "PredictionService"})


@functools.cache
def health_messages() -> tuple[type[Message], type[Message]]:
    """``HealthCheckRequest`` and ``HealthCheckResponse`` message classes.

    Built from a hand-written descriptor in a private pool, so no extra package
    (grpcio-health-checking) is needed and no global pool entry is touched.

    >>> request_type, response_type = health_messages()
    >>> response_type(status=1).SerializeToString()
    b'\\x08\\x01'
    """
    file = descriptor_pb2.FileDescriptorProto(
        name="tfs_async_health.proto", package="grpc.health.v1", syntax="proto3"
    )
    request = file.message_type.add(name="HealthCheckRequest")
    request.field.add(
        name="service",
        number=1,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
        label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
    )
    response = file.message_type.add(name="HealthCheckResponse")
    status = response.enum_type.add(name="ServingStatus")
    for number, name in enumerate(("UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN")):
        status.value.add(name=name, number=number)
    response.field.add(
        name="status",
        number=1,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_ENUM,
        type_name=".grpc.health.v1.HealthCheckResponse.ServingStatus",
        label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
    )
    pool: Any = descriptor_pool.DescriptorPool()  # protobuf ships this class untyped
    pool.Add(file)
    return (
        message_factory.GetMessageClass(
            pool.FindMessageTypeByName("grpc.health.v1.HealthCheckRequest")
        ),
        message_factory.GetMessageClass(
            pool.FindMessageTypeByName("grpc.health.v1.HealthCheckResponse")
        ),
    )


def build_health_handler() -> grpc.GenericRpcHandler:
    """``grpc.health.v1.Health/Check`` answering SERVING for TF Serving's service names."""
    request_type, response_type = health_messages()

    async def check(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Message:
        if request.service not in _HEALTHY_SERVICES:
            await context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
        return response_type(status=1)  # SERVING

    return grpc.method_handlers_generic_handler(
        HEALTH_SERVICE, {"Check": _unary(check, request_type)}
    )
