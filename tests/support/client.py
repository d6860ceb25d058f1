"""Helpers shared by the client and transport tests: models, targets, the per-await time bound."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import numpy as np

from tfs_async.testing import ModelServer, PythonModel, signature
from tfs_async.testing.saved_model import SavedModel

if sys.version_info >= (3, 11):
    within = asyncio.timeout
else:  # aiohttp depends on async-timeout before Python 3.11
    import async_timeout  # type: ignore[import-not-found, unused-ignore]

    within = async_timeout.timeout

# Every await in these tests is bounded by this many seconds (``async with within(STEP)``).
STEP = 10.0
PROTOCOLS = ["grpc", "http"]
# A model name that needs percent-encoding in REST URLs.
ODD_NAME = "odd/name:with ?#%&+ chars"


def double_model(name: str = "double", versions: tuple[int, ...] = (1, 2)) -> PythonModel:
    """serving_default x (float32 [-1]) -> y = 2x + version; also a two-output signature."""

    def make(version: int) -> dict[str, Any]:
        return {
            "serving_default": signature(
                lambda t: {"y": (t["x"] * 2 + version).astype(np.float32)},
                inputs={"x": ("DT_FLOAT", [-1])},
                outputs={"y": ("DT_FLOAT", [-1])},
            ),
            "two": signature(
                lambda t: {"sum": t["a"] + t["b"], "diff": t["a"] - t["b"]},
                inputs={"a": ("DT_INT64", [-1]), "b": ("DT_INT64", [-1])},
                outputs={"sum": ("DT_INT64", [-1]), "diff": ("DT_INT64", [-1])},
            ),
        }

    return PythonModel(name, versions={v: make(v) for v in versions})


def half_plus_two(models_dir: Path, name: str = "half_plus_two") -> SavedModel:
    """TF Serving's own saved_model_half_plus_two_cpu (version 123)."""
    return SavedModel(name, models_dir / "saved_model_half_plus_two_cpu")


def target_of(server: ModelServer, protocol: str) -> str:
    """The client target string for ``server`` over ``protocol``."""
    return f"grpc://{server.grpc_target}" if protocol == "grpc" else server.rest_url
