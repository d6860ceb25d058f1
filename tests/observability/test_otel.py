"""tfs_async.otel against the OpenTelemetry SDK's in-memory exporters, over real sockets."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from tests.observability.recording import predicts, target
from tests.support.client import STEP, within
from tests.support.harness import listeners
from tfs_async.batching import Batching
from tfs_async.client import Client
from tfs_async.errors import StatusCode as Code
from tfs_async.errors import UnavailableError
from tfs_async.otel import OpenTelemetryObserver
from tfs_async.retry import RetryPolicy
from tfs_async.testing import Fault, FaultPlan, ServerCore

X = {"x": np.array([1.0, 2.0, 5.0], np.float32)}
QUICK = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, jitter=0.01)
PREDICT = "tensorflow.serving.PredictionService/Predict"


class Telemetry:
    """An SDK tracer provider and meter provider writing to memory."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.metrics = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.metrics])
        self.observer = OpenTelemetryObserver(self.tracer_provider, self.meter_provider)

    def finished(self, name: str = PREDICT) -> list[ReadableSpan]:
        return [s for s in self.spans.get_finished_spans() if s.name == name]

    def points(self, metric: str) -> list[Any]:
        data = self.metrics.get_metrics_data()
        assert data is not None
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for m in scope.metrics
            if m.name == metric
            for point in m.data.data_points
        ]

    def unit(self, metric: str) -> str | None:
        data = self.metrics.get_metrics_data()
        assert data is not None
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for m in scope.metrics:
                    if m.name == metric:
                        return m.unit
        return None


def _failing(times: int | None) -> FaultPlan:
    plan = FaultPlan(seed=3)
    plan.add(Fault(method="predict", error_rate=1.0, code=Code.UNAVAILABLE, times=times))
    return plan


async def test_a_retried_call_is_one_span_with_a_child_per_attempt(
    core: ServerCore, protocol: str
) -> None:
    otel = Telemetry()
    user = otel.tracer_provider.get_tracer("test")
    async with (
        listeners(core, faults=_failing(2)) as where,
        within(STEP),
        Client(
            target(protocol, where),
            timeout=STEP,
            max_retries=3,
            retry=QUICK,
            observer=otel.observer,
        ) as client,
    ):
        with user.start_as_current_span("handler") as handler:
            await client.predict("half_plus_two", X)
    port = where.grpc_port if protocol == "grpc" else where.rest_port
    spans = otel.finished()
    (call,) = [s for s in spans if s.kind is SpanKind.INTERNAL]
    attempts = sorted(
        (s for s in spans if s.kind is SpanKind.CLIENT),
        key=lambda s: int(str(s.attributes["tfs_async.attempt"])) if s.attributes else 0,
    )
    assert call.parent is not None
    assert call.parent.span_id == handler.get_span_context().span_id
    assert call.attributes is not None
    assert dict(call.attributes) == {
        "rpc.system": "grpc" if protocol == "grpc" else "http",
        "rpc.service": "tensorflow.serving.PredictionService",
        "rpc.method": "Predict",
        "server.address": "127.0.0.1",
        "server.port": port,
        "tfs_async.model.name": "half_plus_two",
        "rpc.grpc.status_code": 0,
        "rpc.response.status_code": "OK",
        "tfs_async.attempts": 3,
    }
    assert call.status.status_code is StatusCode.UNSET
    assert [e.name for e in call.events] == ["retry", "retry"]
    assert len(attempts) == 3
    for number, span in enumerate(attempts, 1):
        assert span.parent is not None
        assert span.parent.span_id == call.context.span_id
        assert span.context.trace_id == call.context.trace_id
        assert span.attributes is not None
        assert span.attributes["tfs_async.attempt"] == number
        assert span.attributes["rpc.method"] == "Predict"
    failed = [a.attributes for a in attempts[:2] if a.attributes is not None]
    assert [a["rpc.grpc.status_code"] for a in failed] == [14, 14]
    assert [a["error.type"] for a in failed] == ["UNAVAILABLE", "UNAVAILABLE"]
    if protocol == "http":
        assert [a["http.response.status_code"] for a in failed] == [503, 503]
    assert [a.status.status_code for a in attempts] == [
        StatusCode.ERROR,
        StatusCode.ERROR,
        StatusCode.UNSET,
    ]
    # Each attempt's trace context reached the server with that attempt.
    sent = [h.get("traceparent") for h in predicts(where.seen)]
    assert sent == [
        f"00-{a.context.trace_id:032x}-{a.context.span_id:016x}-{a.context.trace_flags:02x}"
        for a in attempts
    ]


async def test_metrics_count_calls_attempts_retries_and_refusals(
    core: ServerCore, protocol: str
) -> None:
    otel = Telemetry()
    plan = FaultPlan(seed=3)
    rule = plan.add(Fault(method="predict", error_rate=1.0, code=Code.UNAVAILABLE, times=2))
    async with listeners(core, faults=plan) as where:
        url = target(protocol, where)
        async with (
            within(STEP),
            Client(url, timeout=STEP, max_retries=3, retry=QUICK, observer=otel.observer) as c,
        ):
            await c.predict("half_plus_two", X)
        rule.times = None
        no_budget = RetryPolicy(budget_ratio=0.0, budget_min_retries=0)
        async with (
            within(STEP),
            Client(url, timeout=STEP, retry=no_budget, observer=otel.observer) as spent,
        ):
            with pytest.raises(UnavailableError):
                await spent.predict("half_plus_two", X)
    durations = [
        p
        for p in otel.points("rpc.client.call.duration")
        if p.attributes.get("rpc.method") == "Predict"
    ]
    assert otel.unit("rpc.client.call.duration") == "s"
    assert all(isinstance(p, HistogramDataPoint) for p in durations)
    by_status = {p.attributes["rpc.response.status_code"]: p for p in durations}
    assert by_status["OK"].count == 1
    assert by_status["UNAVAILABLE"].count == 1
    assert 0 < by_status["OK"].sum < STEP
    attempts = sum(
        p.value
        for p in otel.points("tfs_async.client.attempts")
        if p.attributes.get("rpc.method") == "Predict"
    )
    assert attempts == 4
    assert sum(p.value for p in otel.points("tfs_async.client.retries")) == 2
    (refused,) = otel.points("tfs_async.client.retry_budget.rejections")
    assert refused.value == 1
    assert refused.attributes["rpc.method"] == "Predict"


async def test_batches_and_pool_waits_are_measured(core: ServerCore) -> None:
    otel = Telemetry()
    async with (
        listeners(core) as where,
        within(STEP),
        Client(
            target("http", where),
            timeout=STEP,
            pool_size=1,
            observer=otel.observer,
            batching=Batching(max_batch_size=3, max_delay=STEP),
        ) as c,
    ):
        await asyncio.gather(
            c.predict("double", {"x": np.ones(1, np.float32)}),
            c.predict("double", {"x": np.ones(2, np.float32)}),
        )
        await asyncio.gather(*(c.status("double") for _ in range(3)))
    (rows,) = otel.points("tfs_async.client.batch.rows")
    assert (rows.count, rows.sum) == (1, 3)
    assert rows.attributes == {"tfs_async.model.name": "double", "tfs_async.batch.reason": "size"}
    (delay,) = otel.points("tfs_async.client.batch.queue_delay")
    assert delay.count == 1
    assert otel.unit("tfs_async.client.batch.queue_delay") == "s"
    (wait,) = otel.points("tfs_async.client.pool.wait.duration")
    assert wait.count == 2


def test_importing_without_the_extra_names_it() -> None:
    code = "import sys; sys.modules['opentelemetry'] = None; import tfs_async.otel"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode != 0
    assert "pip install 'tfs-async[otel]'" in done.stderr
