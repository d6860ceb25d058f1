"""TensorFlow's own profiler client against the emulator's profiler service.

``tf.profiler.experimental.client.trace`` is what TF Serving's
``profiler_client.py`` and TensorBoard's capture call: TSL's C++ client, which
sends ``/tensorflow.ProfilerService/Profile`` and retries an empty trace. The
saved trace is read back with TensorFlow's own ``XSpace`` class.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc.aio
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.tsl.profiler.protobuf import xplane_pb2 as tf_xplane
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tests.support.interop_serving import running
from tfs_async.testing import ModelServer, PythonModel, signature

pytestmark = pytest.mark.interop

STEP = 60.0


def _double() -> PythonModel:
    return PythonModel(
        "double",
        {
            "serving_default": signature(
                lambda t: {"y": (t["x"] * 2).astype(np.float32)},
                inputs={"x": ("DT_FLOAT", [-1])},
                outputs={"y": ("DT_FLOAT", [-1])},
            )
        },
    )


def _trace(target: str, logdir: Path, duration_ms: int, attempts: int) -> None:
    tf.profiler.experimental.client.trace(
        f"grpc://{target}", str(logdir), duration_ms, num_tracing_attempts=attempts
    )


async def test_tf_profiler_client_captures_the_calls_made_during_its_window(
    tmp_path: Path,
) -> None:
    async with running(ModelServer([_double()])) as server:
        assert server.profiler is not None
        capture = asyncio.ensure_future(
            asyncio.to_thread(_trace, server.grpc_target, tmp_path, 3000, 1)
        )
        await asyncio.wait_for(server.profiler.started(), STEP)
        async with grpc.aio.insecure_channel(server.grpc_target) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "double"
            request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.asarray([1.0], np.float32)))
            await stub.Predict(request, timeout=STEP)
        await asyncio.wait_for(capture, STEP)
    (saved,) = (tmp_path / "plugins" / "profile").glob("*/*.xplane.pb")
    space = tf_xplane.XSpace.FromString(saved.read_bytes())
    (plane,) = space.planes
    events = [
        (line.name, plane.event_metadata[event.metadata_id].name)
        for line in plane.lines
        for event in line.events
    ]
    assert events == [("gRPC", "predict")]


async def test_an_idle_window_gives_the_tf_clients_no_trace_event_error(tmp_path: Path) -> None:
    async with running(ModelServer([_double()])) as server:
        with pytest.raises(Exception, match="No trace event was collected"):
            await asyncio.wait_for(
                asyncio.to_thread(_trace, server.grpc_target, tmp_path, 50, 1), STEP
            )
