"""Google's PredictionServiceStub baseline against the emulator (needs tensorflow-serving-api)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tfs_async.bench.baselines import GoogleStubBaseline
from tfs_async.bench.contenders import Endpoints
from tfs_async.bench.payloads import make_payload

pytestmark = pytest.mark.interop


async def test_stub_round_trips_both_payloads(endpoints: Endpoints) -> None:
    pytest.importorskip("tensorflow_serving.apis.prediction_service_pb2_grpc")
    pytest.importorskip("tensorflow")
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
