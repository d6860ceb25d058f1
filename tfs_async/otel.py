"""OpenTelemetry for the client: a span per call, a child span per attempt, RPC metrics.

Install the extra (``pip install 'tfs-async[otel]'``, which brings
``opentelemetry-api`` only), configure an OpenTelemetry SDK or distro as usual,
and give the client an :class:`OpenTelemetryObserver`::

    from tfs_async import Client
    from tfs_async.otel import OpenTelemetryObserver

    client = Client("grpc://127.0.0.1:8500", observer=OpenTelemetryObserver())

Traces
    One span per logical call, named ``{rpc.service}/{rpc.method}`` (e.g.
    ``tensorflow.serving.PredictionService/Predict``, kind INTERNAL, a child of the
    span current when the call starts), and one child span per attempt (kind
    CLIENT, same name), so a retried call shows its attempts side by side with
    the waits between them. Both carry OpenTelemetry's RPC attributes:
    ``rpc.system`` (``grpc``; ``http`` for TF Serving's REST API), ``rpc.service``,
    ``rpc.method``, ``server.address``, ``server.port``, and when it ends the
    status: ``rpc.grpc.status_code`` (the canonical code, an int, REST
    included) and ``rpc.response.status_code`` (its name), plus
    ``http.response.status_code`` over REST and ``error.type`` on failure.
    Attempts carry ``tfs_async.attempt`` (1, 2, ...); the call span gets a
    ``retry`` event per retry (``tfs_async.retry.delay`` seconds) and a
    ``retry_budget_exhausted`` event when the budget refused one. Spans hold no
    payload, no metadata and no server message (which may echo inputs).

Context propagation
    Each attempt sends the W3C ``traceparent`` (and ``tracestate``) of its span
    as gRPC call metadata or an HTTP header, through the globally configured
    propagator, so the server's spans join the trace.

Metrics (meter ``tfs_async``)
    * ``rpc.client.call.duration`` (histogram, s): logical calls, with the RPC attributes;
    * ``tfs_async.client.attempts`` (counter): attempts sent;
    * ``tfs_async.client.retries`` (counter): retries decided;
    * ``tfs_async.client.retry_budget.rejections`` (counter): retries the budget refused;
    * ``tfs_async.client.pool.wait.duration`` (histogram, s): waits for a pooled connection;
    * ``tfs_async.client.batch.rows`` (histogram): rows per batch sent by a micro-batcher;
    * ``tfs_async.client.batch.queue_delay`` (histogram, s): a batch's first call to its sending.
"""

from __future__ import annotations

import time
from typing import Any

try:
    from opentelemetry import metrics, propagate, trace
    from opentelemetry.trace import SpanKind, Status
    from opentelemetry.trace import StatusCode as SpanStatus
except ImportError as error:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        "tfs_async.otel needs OpenTelemetry's API: pip install 'tfs-async[otel]'"
    ) from error

from tfs_async.errors import TFServingError
from tfs_async.observe import (
    AttemptInfo,
    BatchFlush,
    CallInfo,
    Observer,
    PoolWait,
    RetryScheduled,
)

__all__ = ["OpenTelemetryObserver"]

_SCOPE = "tfs_async"
_VERSION = "0.1.0"


def _rpc_attributes(call: CallInfo) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "rpc.system": "grpc" if call.protocol == "grpc" else call.protocol,
        "rpc.service": call.service,
        "rpc.method": call.method,
    }
    if call.server_address is not None:
        attributes["server.address"] = call.server_address
    if call.server_port is not None:
        attributes["server.port"] = call.server_port
    if call.model is not None:
        attributes["tfs_async.model.name"] = call.model.name
    return attributes


def _status_attributes(error: BaseException | None) -> dict[str, Any]:
    if error is None:
        return {"rpc.grpc.status_code": 0, "rpc.response.status_code": "OK"}
    if isinstance(error, TFServingError):
        attributes: dict[str, Any] = {
            "rpc.grpc.status_code": int(error.code),
            "rpc.response.status_code": error.code.name,
            "error.type": error.code.name,
        }
        if error.http_status is not None:
            attributes["http.response.status_code"] = error.http_status
        return attributes
    return {"error.type": type(error).__qualname__}


class OpenTelemetryObserver(Observer):
    """An :class:`~tfs_async.observe.Observer` producing OpenTelemetry spans and metrics.

    Args:
        tracer_provider: where spans go (default: the global provider).
        meter_provider: where metrics go (default: the global provider).
        propagate_context: send each attempt's ``traceparent`` to the server.
    """

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        *,
        propagate_context: bool = True,
    ) -> None:
        self._tracer = trace.get_tracer(_SCOPE, _VERSION, tracer_provider=tracer_provider)
        meter = metrics.get_meter(_SCOPE, _VERSION, meter_provider=meter_provider)
        self._propagate = propagate_context
        self._duration = meter.create_histogram(
            "rpc.client.call.duration", unit="s", description="Duration of logical client calls"
        )
        self._attempts = meter.create_counter(
            "tfs_async.client.attempts", unit="{attempt}", description="Attempts sent"
        )
        self._retries = meter.create_counter(
            "tfs_async.client.retries", unit="{retry}", description="Retries decided"
        )
        self._rejections = meter.create_counter(
            "tfs_async.client.retry_budget.rejections",
            unit="{retry}",
            description="Retries refused because the retry budget was spent",
        )
        self._pool_wait = meter.create_histogram(
            "tfs_async.client.pool.wait.duration",
            unit="s",
            description="Waits for a free pooled connection",
        )
        self._batch_rows = meter.create_histogram(
            "tfs_async.client.batch.rows", unit="{row}", description="Rows per batch sent"
        )
        self._batch_delay = meter.create_histogram(
            "tfs_async.client.batch.queue_delay",
            unit="s",
            description="Seconds from a batch's first call to its sending",
        )

    @staticmethod
    def _name(call: CallInfo) -> str:
        return f"{call.service}/{call.method}"

    def call_started(self, call: CallInfo) -> None:
        attributes = _rpc_attributes(call)
        span = self._tracer.start_span(
            self._name(call), kind=SpanKind.INTERNAL, attributes=attributes
        )
        call.state[self] = (span, attributes)

    def call_ended(self, call: CallInfo, error: BaseException | None) -> None:
        span, attributes = call.state.pop(self)
        status = _status_attributes(error)
        span.set_attributes(status)
        span.set_attribute("tfs_async.attempts", call.attempts)
        if error is not None:
            span.set_status(Status(SpanStatus.ERROR, status.get("error.type")))
        span.end()
        self._duration.record(time.monotonic() - call.started, {**attributes, **status})

    def attempt_started(self, attempt: AttemptInfo) -> None:
        call = attempt.call
        parent, attributes = call.state[self]
        span = self._tracer.start_span(
            self._name(call),
            context=trace.set_span_in_context(parent),
            kind=SpanKind.CLIENT,
            attributes={**attributes, "tfs_async.attempt": attempt.number},
        )
        attempt.state[self] = span
        self._attempts.add(1, attributes)
        if self._propagate:
            carrier: dict[str, str] = {}
            propagate.inject(carrier, context=trace.set_span_in_context(span))
            attempt.metadata.extend((key.lower(), value) for key, value in carrier.items())

    def attempt_ended(self, attempt: AttemptInfo, error: BaseException | None) -> None:
        span = attempt.state.pop(self)
        status = _status_attributes(error)
        span.set_attributes(status)
        if error is not None:
            span.set_status(Status(SpanStatus.ERROR, status.get("error.type")))
        span.end()

    def retry_scheduled(self, event: RetryScheduled) -> None:
        attributes: dict[str, Any] = {}
        if event.call is not None and self in event.call.state:
            span, attributes = event.call.state[self]
            span.add_event(
                "retry",
                {
                    "tfs_async.attempt": event.attempt,
                    "tfs_async.retry.delay": event.delay,
                    **_status_attributes(event.error),
                },
            )
        self._retries.add(1, attributes)

    def budget_exhausted(self, call: CallInfo | None, error: BaseException) -> None:
        attributes: dict[str, Any] = {}
        if call is not None and self in call.state:
            span, attributes = call.state[self]
            span.add_event("retry_budget_exhausted", _status_attributes(error))
        self._rejections.add(1, attributes)

    def pool_wait(self, event: PoolWait) -> None:
        attributes: dict[str, Any] = {
            "rpc.system": event.protocol,
            "tfs_async.pool.acquired": event.acquired,
        }
        self._pool_wait.record(event.seconds, attributes)

    def batch_flushed(self, event: BatchFlush) -> None:
        attributes = {
            "tfs_async.model.name": event.model.name,
            "tfs_async.batch.reason": event.reason,
        }
        self._batch_rows.record(event.rows, attributes)
        self._batch_delay.record(event.queue_delay, attributes)
