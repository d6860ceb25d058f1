"""Models the sync-client tests serve from a child process (a ``--python_models`` factory)."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import numpy.typing as npt

from tfs_async.testing import (
    ModelSource,
    PythonModel,
    classify_signature,
    parse_examples,
    regress_signature,
    signature,
)

ArrayDict = dict[str, npt.NDArray[Any]]


def _double(version: int) -> Any:
    def run(t: ArrayDict) -> ArrayDict:
        x = t["x"]
        # "n": how many rows the request that carried this row had (batching is visible).
        return {"y": (x * 2 + version).astype(np.float32), "n": np.full(len(x), len(x), np.int64)}

    return run


async def _stall(t: ArrayDict) -> ArrayDict:
    await asyncio.Event().wait()  # never answers: the client's deadline ends the call
    return t


def _classify(t: ArrayDict) -> ArrayDict:
    f = parse_examples(t["inputs"], {"f": np.float32})["f"][:, 0]
    scores = np.stack([f, 1 - f], axis=1).astype(np.float32)
    classes = np.array([[b"yes", b"no"]] * len(f), object)
    return {"scores": scores, "classes": classes}


def _regress(t: ArrayDict) -> ArrayDict:
    f = parse_examples(t["inputs"], {"f": np.float32})["f"]
    return {"outputs": (f * 10).astype(np.float32)}


def build() -> list[ModelSource]:
    """``double`` (versions 1, 2: y = 2x + version; n: the request's rows), stall, kinds."""

    def signatures(version: int) -> dict[str, Any]:
        return {
            "serving_default": signature(
                _double(version),
                inputs={"x": ("DT_FLOAT", [-1])},
                outputs={"y": ("DT_FLOAT", [-1]), "n": ("DT_INT64", [-1])},
            )
        }

    return [
        PythonModel("double", versions={1: signatures(1), 2: signatures(2)}),
        PythonModel(
            "stall",
            {
                "serving_default": signature(
                    _stall, inputs={"x": ("DT_FLOAT", [-1])}, outputs={"x": ("DT_FLOAT", [-1])}
                )
            },
        ),
        PythonModel(
            "kinds",
            {
                "classify": classify_signature(_classify),
                "regress": regress_signature(_regress),
            },
        ),
    ]
