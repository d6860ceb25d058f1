"""TF Serving's half_plus_two test model as a :class:`~tfs_async.testing.PythonModel`.

``saved_model_half_plus_two_cpu`` is the model TF Serving's own tests and its
Docker quickstart serve (``y = 0.5 * x + 2``, version 123). This module declares
the same five signatures with the same aliases, dtypes, shapes, tensor names and
method names, so a client sees identical metadata, and computes them with the
functions of :mod:`tfs_async.testing.reference_models`. It needs neither
TensorFlow nor the SavedModel files, which is why the pytest fixtures serve it
by default.

>>> import numpy as np
>>> model = half_plus_two_model()
>>> model.available_versions()
[123]
>>> sorted(model.signatures(123))  # doctest: +NORMALIZE_WHITESPACE
['classify_x_to_y', 'regress_x2_to_y3', 'regress_x_to_y', 'regress_x_to_y2',
 'serving_default']
>>> model.signatures(123)["serving_default"].function({"x": np.array([2.0, 3.0], np.float32)})
{'y': array([3. , 3.5], dtype=float32)}
"""

from __future__ import annotations

from tfs_async.testing.models import PythonModel, Signature, signature, tensor_def
from tfs_async.testing.reference_models import half_plus_two_functions

__all__ = ["HALF_PLUS_TWO_VERSION", "half_plus_two_model"]

HALF_PLUS_TWO_VERSION = 123
"""The version of ``saved_model_half_plus_two_cpu`` (its directory is ``00000123``)."""


def _signatures() -> dict[str, Signature]:
    fns = half_plus_two_functions()
    column = [-1, 1]
    examples = tensor_def("DT_STRING", None, name="tf_example:0")
    return {
        "serving_default": signature(
            fns["serving_default"],
            inputs={"x": tensor_def("DT_FLOAT", column, name="x:0")},
            outputs={"y": tensor_def("DT_FLOAT", column, name="y:0")},
        ),
        "classify_x_to_y": signature(
            fns["classify_x_to_y"],
            inputs={"inputs": examples},
            outputs={"scores": tensor_def("DT_FLOAT", column, name="y:0")},
            method="classify",
        ),
        "regress_x_to_y": signature(
            fns["regress_x_to_y"],
            inputs={"inputs": examples},
            outputs={"outputs": tensor_def("DT_FLOAT", column, name="y:0")},
            method="regress",
        ),
        "regress_x_to_y2": signature(
            fns["regress_x_to_y2"],
            inputs={"inputs": examples},
            outputs={"outputs": tensor_def("DT_FLOAT", column, name="y2:0")},
            method="regress",
        ),
        "regress_x2_to_y3": signature(
            fns["regress_x2_to_y3"],
            inputs={"inputs": tensor_def("DT_FLOAT", column, name="x2:0")},
            outputs={"outputs": tensor_def("DT_FLOAT", column, name="y3:0")},
            method="regress",
        ),
    }


def half_plus_two_model(
    name: str = "half_plus_two", *, version: int = HALF_PLUS_TWO_VERSION
) -> PythonModel:
    """TF Serving's ``saved_model_half_plus_two_cpu``, served as ``name`` at ``version``.

    Signatures (as TF Serving reports them): ``serving_default`` (``x`` -> ``y``,
    float ``[-1, 1]``), ``classify_x_to_y`` and ``regress_x_to_y`` (serialized
    ``tf.Example`` with float feature ``x`` -> ``0.5 * x + 2``), ``regress_x_to_y2``
    (feature ``x`` -> ``0.5 * x + 3``) and ``regress_x2_to_y3`` (float ``inputs`` ->
    ``0.5 * inputs + 3``). ``serving_default`` is elementwise: any shape works.

    It is also a factory for a child process:
    ``ModelServerProcess(python_models=["tfs_async.testing.half_plus_two:half_plus_two_model"])``.
    """
    return PythonModel(name, _signatures(), version=version)
