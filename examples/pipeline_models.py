"""The model the pipeline examples call, for the emulator (a ``--python_models`` factory).

``half_plus_two``: input ``x`` (float32, ``[batch, 3]``) -> ``y`` = 0.5 * x + 2 and
``total`` = the sum of a row's ``y`` (float32, ``[batch]``). Serve it with::

    PYTHONPATH=examples tfs-async serve --port 8500 --rest_api_port 8501 \\
        --python_models pipeline_models:build
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from tfs_async.testing import ModelSource, PythonModel, signature


async def _half_plus_two(tensors: dict[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[Any]]:
    # async: the emulator runs it on its loop, with no thread hop per request.
    y = (tensors["x"] * 0.5 + 2).astype(np.float32)
    return {"y": y, "total": y.sum(axis=1, dtype=np.float32)}


def build() -> list[ModelSource]:
    """The examples' model sources."""
    return [
        PythonModel(
            "half_plus_two",
            versions={
                7: {
                    "serving_default": signature(
                        _half_plus_two,
                        inputs={"x": ("DT_FLOAT", [-1, 3])},
                        outputs={"y": ("DT_FLOAT", [-1, 3]), "total": ("DT_FLOAT", [-1])},
                    )
                }
            },
        )
    ]
