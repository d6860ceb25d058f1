"""Python functions for the test SavedModels: TF Serving's half_plus_two and ours.

Verified by running each SavedModel with TensorFlow 2.21 (tensorflow-cpu), for
``saved_model_half_plus_two_cpu``, ``saved_model_half_plus_two_2_versions``
(123 and 124 identical) and ``saved_model_half_plus_two_tf2_cpu``:

* ``serving_default``: input ``x`` (float) -> ``y = 0.5 * x + 2``, elementwise.
* ``classify_x_to_y``: serialized Examples, feature ``x`` -> ``scores = 0.5 * x + 2`` ([batch, 1]).
* ``regress_x_to_y``: serialized Examples, feature ``x`` -> ``outputs = 0.5 * x + 2``.
* ``regress_x_to_y2``: serialized Examples, feature ``x`` (not ``x2``) -> ``0.5 * x + 3``.
* ``regress_x2_to_y3``: float tensor ``inputs`` -> ``outputs = 0.5 * inputs + 3``.
* ``classify_x2_to_y3``: float tensor ``inputs`` -> ``scores = 0.5 * inputs + 3``.

and for this project's ``tf1_half_plus_three`` (a TF1 SavedModel with an asset
and a ``main_op``, made by ``tests/data/make_tf1_models.py`` to behave like TF
Serving's ``saved_model_half_plus_three``), verified the same way:

* ``serving_default``: input ``x`` (float) -> ``y = 0.5 * x + 3``, elementwise.
* ``tensorflow/serving/regress``: serialized Examples, feature ``x`` -> ``outputs = 0.5 * x + 3``.

>>> import numpy as np
>>> fns = half_plus_two_functions()
>>> fns["serving_default"]({"x": np.array([1.0, 2.0], dtype=np.float32)})
{'y': array([2.5, 3. ], dtype=float32)}
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tfs_async.testing.models import ArrayDict, parse_examples

__all__ = [
    "HALF_PLUS_THREE_DIR",
    "REFERENCE_MODEL_DIRS",
    "ArrayFunction",
    "half_plus_three_functions",
    "half_plus_two_functions",
    "reference_functions",
]

# Directory name of this project's TF1 model computing half_plus_three (tests/data).
HALF_PLUS_THREE_DIR = "tf1_half_plus_three"

ArrayFunction = Callable[[ArrayDict], dict[str, npt.NDArray[Any]]]
"""A synchronous signature function over numpy arrays."""

# Directory names of TF Serving's test models that compute half_plus_two.
REFERENCE_MODEL_DIRS = frozenset(
    {
        "half_plus_two",
        "saved_model_half_plus_two_cpu",
        "saved_model_half_plus_two_2_versions",
        "saved_model_half_plus_two_tf2_cpu",
    }
)


def _affine(alias: str, out: str, shift: float) -> ArrayFunction:
    def run(inputs: ArrayDict) -> dict[str, npt.NDArray[Any]]:
        x = np.asarray(inputs[alias], dtype=np.float32)
        return {out: (np.float32(0.5) * x + np.float32(shift)).astype(np.float32)}

    return run


def _from_examples(out: str, shift: float) -> ArrayFunction:
    def run(inputs: ArrayDict) -> dict[str, npt.NDArray[Any]]:
        x = parse_examples(inputs["inputs"], {"x": np.float32})["x"]
        return {out: (np.float32(0.5) * x + np.float32(shift)).astype(np.float32)}

    return run


def half_plus_two_functions() -> dict[str, ArrayFunction]:
    """Signature key -> function for every signature of the half_plus_two test models."""
    return {
        "serving_default": _affine("x", "y", 2.0),
        "classify_x_to_y": _from_examples("scores", 2.0),
        "regress_x_to_y": _from_examples("outputs", 2.0),
        "regress_x_to_y2": _from_examples("outputs", 3.0),
        "regress_x2_to_y3": _affine("inputs", "outputs", 3.0),
        "classify_x2_to_y3": _affine("inputs", "scores", 3.0),
    }


def half_plus_three_functions() -> dict[str, ArrayFunction]:
    """``tf1_half_plus_three`` (like TF Serving's half_plus_three): ``y = 0.5 * x + 3``.

    ``serving_default`` takes ``x``; ``tensorflow/serving/regress`` takes
    serialized Examples with feature ``x`` (its TensorInfo says float, the graph
    tensor is a string, as TF Serving feeds it).

    >>> import numpy as np
    >>> half_plus_three_functions()["serving_default"]({"x": np.array([1.0, 5.0], np.float32)})
    {'y': array([3.5, 5.5], dtype=float32)}
    """
    return {
        "serving_default": _affine("x", "y", 3.0),
        "tensorflow/serving/regress": _from_examples("outputs", 3.0),
    }


def reference_functions(base_path: str | os.PathLike[str]) -> dict[str, ArrayFunction] | None:
    """The functions for a reference model's base path, or None if it is not one."""
    name = Path(base_path).name
    if name in REFERENCE_MODEL_DIRS:
        return half_plus_two_functions()
    if name == HALF_PLUS_THREE_DIR:
        return half_plus_three_functions()
    return None
