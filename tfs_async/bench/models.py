"""The benchmark's model, importable by the emulator's server process.

``tfs-async serve --python_models tfs_async.bench.models:benchmark_models`` serves
model ``bench`` with two signatures, both identities so that the response is the
same size as the request and the benchmark measures the protocols, not a model:

- ``serving_default``: input ``x`` (DT_FLOAT, any shape) -> output ``y`` = ``x``;
- ``bytes``: input ``s`` (DT_STRING, any shape) -> output ``s`` = ``s``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from tfs_async.testing.models import ModelSource, PythonModel, signature

__all__ = [
    "BYTES_INPUT",
    "BYTES_OUTPUT",
    "BYTES_SIGNATURE",
    "FLOAT_INPUT",
    "FLOAT_OUTPUT",
    "MODEL_NAME",
    "benchmark_models",
]

MODEL_NAME = "bench"
FLOAT_INPUT = "x"
FLOAT_OUTPUT = "y"
BYTES_SIGNATURE = "bytes"
BYTES_INPUT = "s"
BYTES_OUTPUT = "s"


async def _float_identity(tensors: dict[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[Any]]:
    # async so the emulator runs it on its loop: no thread hop inflating the figures
    return {FLOAT_OUTPUT: tensors[FLOAT_INPUT]}


async def _bytes_identity(tensors: dict[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[Any]]:
    return {BYTES_OUTPUT: tensors[BYTES_INPUT]}


def benchmark_models() -> list[ModelSource]:
    """The model sources of the benchmark server (the ``--python_models`` factory).

    >>> [m.name for m in benchmark_models()]
    ['bench']
    >>> sorted(benchmark_models()[0].signatures(1))
    ['bytes', 'serving_default']
    """
    model = PythonModel(
        MODEL_NAME,
        {
            "serving_default": signature(
                _float_identity,
                inputs={FLOAT_INPUT: (np.float32, None)},
                outputs={FLOAT_OUTPUT: (np.float32, None)},
            ),
            BYTES_SIGNATURE: signature(
                _bytes_identity,
                inputs={BYTES_INPUT: ("DT_STRING", None)},
                outputs={BYTES_OUTPUT: ("DT_STRING", None)},
            ),
        },
    )
    return [model]
