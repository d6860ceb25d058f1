"""A real emulator serving the benchmark model, in this process, on free ports."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tfs_async.bench.contenders import Endpoints
from tfs_async.bench.models import benchmark_models
from tfs_async.bench.payloads import TargetModel
from tfs_async.testing import ModelServer


@pytest.fixture
async def bench_server() -> AsyncIterator[ModelServer]:
    async with ModelServer(benchmark_models()) as server:
        yield server


@pytest.fixture
def endpoints(bench_server: ModelServer) -> Endpoints:
    return Endpoints(bench_server.grpc_target, bench_server.rest_url, TargetModel())
