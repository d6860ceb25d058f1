"""Fixtures for the emulator's network tests: models, running servers, clients, leak checks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import numpy as np
import pytest
import pytest_asyncio
from aiohttp import ClientSession, ClientTimeout

from tfs_async.testing import ModelServer, PythonModel, signature
from tfs_async.testing.saved_model import SavedModel

# Every await in these tests is bounded by this many seconds.
STEP_TIMEOUT = 10.0


def double_model(name: str = "double", versions: tuple[int, ...] = (1,)) -> PythonModel:
    """A tiny Python model: serving_default x (float32, [-1]) -> y = 2 * x + version."""

    def make(version: int) -> dict[str, Any]:
        return {
            "serving_default": signature(
                lambda t: {"y": (t["x"] * 2 + version).astype(np.float32)},
                inputs={"x": ("DT_FLOAT", [-1])},
                outputs={"y": ("DT_FLOAT", [-1])},
            )
        }

    return PythonModel(name, versions={v: make(v) for v in versions})


def gated_model(name: str, gate: asyncio.Event, entered: asyncio.Event) -> PythonModel:
    """serving_default that signals ``entered`` then waits for ``gate`` (for timeout tests)."""

    async def run(t: dict[str, Any]) -> dict[str, Any]:
        entered.set()
        await gate.wait()
        return {"y": t["x"]}

    return PythonModel(
        name,
        {
            "serving_default": signature(
                run, inputs={"x": ("DT_FLOAT", [-1])}, outputs={"y": ("DT_FLOAT", [-1])}
            )
        },
    )


def half_plus_two(models_dir: Path, name: str = "half_plus_two") -> SavedModel:
    """TF Serving's own saved_model_half_plus_two_cpu (version 123) under ``name``."""
    return SavedModel(name, models_dir / "saved_model_half_plus_two_cpu")


@pytest.fixture
def make_double_model() -> Callable[..., PythonModel]:
    """The :func:`double_model` factory."""
    return double_model


@pytest.fixture
def make_gated_model() -> Callable[[str, asyncio.Event, asyncio.Event], PythonModel]:
    """The :func:`gated_model` factory."""
    return gated_model


@pytest_asyncio.fixture
async def server() -> AsyncIterator[ModelServer]:
    """A running server with the ``double`` model (versions 1 and 2)."""
    async with ModelServer([double_model(versions=(1, 2))]) as srv:
        yield srv


@pytest_asyncio.fixture
async def http() -> AsyncIterator[ClientSession]:
    """An aiohttp session that does not retry, decompress or raise on status."""
    async with ClientSession(
        timeout=ClientTimeout(total=STEP_TIMEOUT), auto_decompress=False
    ) as session:
        yield session


def unary(channel: grpc.aio.Channel, path: str, response_type: Any) -> Any:
    """A unary gRPC callable for ``path`` using this package's message classes."""
    return channel.unary_unary(
        path,
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response_type.FromString,
    )


def other_tasks() -> set[asyncio.Task[Any]]:
    """Tasks of the running loop other than the current one."""
    current = asyncio.current_task()
    return {t for t in asyncio.all_tasks() if t is not current and not t.done()}


@pytest.fixture
def no_new_tasks() -> Callable[[set[asyncio.Task[Any]]], None]:
    """Assert that no task beyond ``before`` is still alive."""

    def check(before: set[asyncio.Task[Any]]) -> None:
        leaked = other_tasks() - before
        assert not leaked, f"leaked tasks: {leaked}"

    return check
