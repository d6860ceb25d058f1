"""Models the command-line tests serve (``--python_models cli_models:build``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from tests.support import reference as tfs_reference
from tfs_async.testing import PythonModel, SavedModel, half_plus_two_functions, signature
from tfs_async.testing.models import (
    ModelSource,
    classify_signature,
    parse_examples,
    regress_signature,
)

Tensors = dict[str, npt.NDArray[Any]]


def _scale(t: Tensors) -> Tensors:
    # n: the rows of the request each row arrived in (shows whether rows were merged).
    rows = len(t["x"])
    return {"y": t["x"] * 2 + 1, "n": np.full((rows, 1), rows, np.float32)}


def _tag(t: Tensors) -> Tensors:
    tags = np.array([b"<" + bytes(v) + b">" for v in t["s"].ravel()], dtype=object)
    return {"out": tags.reshape(t["s"].shape), "k": t["k"] * 3}


def _classify(t: Tensors) -> Tensors:
    feats = parse_examples(t["inputs"], {"f": np.float32})
    f = np.asarray(feats["f"], np.float32).reshape(-1)
    classes = np.array([[b"low", b"high"]] * len(f), dtype=object)
    scores = np.stack([1 - f, f], axis=1).astype(np.float32)
    return {"classes": classes, "scores": scores}


def _regress(t: Tensors) -> Tensors:
    feats = parse_examples(t["inputs"], {"f": np.float32})
    f = np.asarray(feats["f"], np.float32).reshape(-1, 1)
    return {"outputs": f * 10}


def build() -> list[ModelSource]:
    """scale (float32 [-1, 2] -> y, n), tagger (strings + int32), scorer (classify/regress),
    and TF Serving's own half_plus_two SavedModel."""
    scale = signature(
        _scale,
        inputs={"x": ("DT_FLOAT", [-1, 2])},
        outputs={"y": ("DT_FLOAT", [-1, 2]), "n": ("DT_FLOAT", [-1, 1])},
    )
    tagger = signature(
        _tag,
        inputs={"s": ("DT_STRING", [-1]), "k": ("DT_INT32", [-1])},
        outputs={"out": ("DT_STRING", [-1]), "k": ("DT_INT32", [-1])},
    )
    hpt = tfs_reference.models_dir() / "saved_model_half_plus_two_cpu"
    return [
        SavedModel("half_plus_two", hpt, functions=half_plus_two_functions()),
        PythonModel("scale", {"serving_default": scale}, version=3),
        PythonModel("tagger", {"serving_default": tagger}),
        PythonModel(
            "scorer",
            {
                "serving_default": classify_signature(_classify),
                "regress": regress_signature(_regress),
            },
        ),
    ]
