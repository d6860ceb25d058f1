"""The benchmark's "Google's PredictionServiceStub" baseline works against the emulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest
import tensorflow  # noqa: F401  (the tier fails, never skips, without it)
import tensorflow_serving.apis.prediction_service_pb2_grpc  # noqa: F401

from tfs_async.bench.baselines import GoogleStubBaseline
from tfs_async.bench.contenders import Endpoints
from tfs_async.bench.models import benchmark_models
from tfs_async.bench.payloads import TargetModel, make_payload
from tfs_async.testing import ModelServer

pytestmark = pytest.mark.interop


@pytest.fixture
async def endpoints() -> AsyncIterator[Endpoints]:
    async with ModelServer(benchmark_models()) as server:
        yield Endpoints(server.grpc_target, server.rest_url, TargetModel())


async def test_stub_round_trips_both_payloads(endpoints: Endpoints) -> None:
    stub = GoogleStubBaseline()
    async with asyncio.timeout(60):
        await stub.open(endpoints, max_concurrency=1)
        try:
            for name in ("f32[1x10]", "bytes[32]x100"):
                payload = make_payload(name, endpoints.model)
                assert payload is not None
                ready = await stub.prepare(payload)
                np.testing.assert_array_equal(await ready.call(), payload.array)
        finally:
            await stub.close()
