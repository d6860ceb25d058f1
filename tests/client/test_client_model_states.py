"""Loading versions, waiting for availability and reloading the config, over both transports."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import numpy as np
import pytest
import pytest_asyncio

from tests.support.client import STEP, double_model, target_of, within
from tfs_async.client import Client
from tfs_async.errors import DeadlineExceededError, NotFoundError
from tfs_async.testing import ModelServer
from tfs_async.types import VersionState

X = {"x": np.array([1.0], np.float32)}


def config(versions: Sequence[int], labels: dict[str, int] | None = None) -> str:
    """models.config text serving ``versions`` of model "loading"."""
    wanted = " ".join(f"versions: {v}" for v in versions)
    label_text = "".join(
        f" version_labels {{ key: '{k}' value: {v} }}" for k, v in (labels or {}).items()
    )
    return (
        "model_config_list { config { name: 'loading' base_path: '/loading' "
        f"model_platform: 'tensorflow' model_version_policy {{ specific {{ {wanted} }} }}"
        f"{label_text} }} }}"
    )


@pytest_asyncio.fixture
async def server() -> AsyncIterator[ModelServer]:
    """Model "loading": versions 1 and 3 exist; only 1 is served at first."""
    async with within(STEP):
        srv = ModelServer([double_model("loading", (1, 3))], config=config([1]))
        await srv.start()
    try:
        yield srv
    finally:
        async with within(STEP):
            await srv.stop()


@pytest_asyncio.fixture
async def admin(server: ModelServer) -> AsyncIterator[Client]:
    async with Client(target_of(server, "grpc"), timeout=STEP) as client:
        yield client


async def test_loading_version_is_not_found_then_available(
    server: ModelServer, admin: Client, protocol: str
) -> None:
    gate = server.core.hold_loading("loading", 3)
    reload = asyncio.create_task(admin.reload_config(config([1, 3])))
    try:
        async with within(STEP):
            await gate.wait_reached()
        async with Client(target_of(server, protocol), timeout=STEP, max_retries=0) as client:
            with pytest.raises(NotFoundError, match="Specific"):
                await client.predict("loading", X, version=3)
            statuses = await client.status("loading")
            assert statuses[0].version == 3
            assert statuses[0].state is VersionState.LOADING
            waiting = asyncio.create_task(client.wait_until_available("loading", version=3))
            gate.release()
            async with within(STEP):
                available = await waiting
            assert available.version == 3
            assert available.state is VersionState.AVAILABLE
            result = await client.predict("loading", X, version=3)
        np.testing.assert_array_equal(result.output, [5.0])
    finally:
        gate.release()
        async with within(STEP):
            await reload


async def test_wait_until_available_gives_up_at_its_timeout(
    server: ModelServer, protocol: str
) -> None:
    async with Client(target_of(server, protocol), timeout=STEP) as client:
        async with within(STEP):
            with pytest.raises(DeadlineExceededError, match=r"not available within 0\.3 s") as info:
                await client.wait_until_available("loading", version=3, timeout=0.3)
        assert isinstance(info.value.__cause__, NotFoundError)
        ready = await client.wait_until_available("loading", timeout=STEP)
    assert ready.version == 1


async def test_reload_config_moves_a_label(
    server: ModelServer, admin: Client, protocol: str
) -> None:
    await admin.reload_config(config([1, 3], {"stable": 1}))
    async with Client(target_of(server, protocol), timeout=STEP) as client:
        stable = await client.predict("loading", X, label="stable")
        ready = await client.wait_until_available("loading", label="stable", timeout=STEP)
        await admin.reload_config(config([1, 3], {"stable": 3}))
        moved = await client.predict("loading", X, label="stable")
    np.testing.assert_array_equal(stable.output, [3.0])
    assert ready.version == 1
    np.testing.assert_array_equal(moved.output, [5.0])
