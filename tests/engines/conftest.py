"""Fixtures of the engine tiers (Beam, Ray): the examples' model served from another process.

The engines call from their own threads, processes and event loops, so the
emulator runs in a child process: nothing here shares a loop with the engine.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from tfs_async.testing import ModelServerProcess

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
sys.path.insert(0, str(EXAMPLES))  # the examples and their model factory import as modules

if sys.version_info >= (3, 11):
    within = asyncio.timeout
else:  # aiohttp depends on async-timeout before Python 3.11
    import async_timeout  # type: ignore[import-not-found, unused-ignore]

    within = async_timeout.timeout

# The engine tiers need their engine (`make beam`, `make test-engines`); elsewhere
# (`make unit`) their modules are not collected, and their markers deselect them.
collect_ignore = [
    name
    for name, module in (("test_beam.py", "apache_beam"), ("test_ray.py", "ray"))
    if importlib.util.find_spec(module) is None
]

STEP = 30.0  # seconds: the deadline of every request and the bound of every wait
MODEL = "half_plus_two"
VERSION = 7
ROWS = 10_000


def examples_env() -> dict[str, str]:
    """This process's environment with examples/ on the child's import path."""
    path = os.pathsep.join(p for p in (str(EXAMPLES), os.environ.get("PYTHONPATH")) if p)
    return dict(os.environ, PYTHONPATH=path)


@pytest.fixture(scope="session")
def server() -> Iterator[ModelServerProcess]:
    """The examples' half_plus_two (version 7) over gRPC and REST, in a child process."""
    with ModelServerProcess(
        python_models=["pipeline_models:build"], env=examples_env(), startup_timeout=STEP * 2
    ) as srv:
        yield srv


@pytest.fixture(params=["grpc", "http"])
def target(request: pytest.FixtureRequest, server: ModelServerProcess) -> str:
    """The server's target over each protocol."""
    return f"grpc://{server.grpc_target}" if request.param == "grpc" else server.rest_url


def dead_target(protocol: str) -> str:
    """A loopback port with nothing listening (bound, then closed)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"grpc://127.0.0.1:{port}" if protocol == "grpc" else f"http://127.0.0.1:{port}"


def rows(n: int = ROWS) -> npt.NDArray[np.float32]:
    """n distinct rows of 3 floats: row i is (i, i + 0.25, -i)."""
    i = np.arange(n, dtype=np.float32)
    stacked: npt.NDArray[np.float32] = np.stack([i, i + 0.25, -i], axis=1)
    return stacked


def expected_y(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """What half_plus_two answers for x."""
    y: npt.NDArray[np.float32] = (x * np.float32(0.5) + np.float32(2)).astype(np.float32)
    return y
