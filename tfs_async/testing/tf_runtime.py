"""Run a SavedModel's signatures with TensorFlow, for the emulator.

The emulator reads signatures from ``saved_model.pb`` without TensorFlow. When a
SavedModel version has no Python callables bound to it and TensorFlow is
installed (``pip install tfs-async[tensorflow]``), the server core executes the
model through :func:`load_signature_functions`, which loads the version with
``tf.saved_model.load`` and wraps each signature as a plain numpy-in / numpy-out
callable.

``tf.saved_model.load`` handles both TF1-style SavedModels (graph + session
signatures, wrapped as functions) and TF2 ones. Like TF Serving, which feeds the
signature's tensors straight into ``Session::Run``, inputs are not checked
against the signature's declared static shape; only aliases and dtypes are. For
classify/regress signatures the input (usually ``"inputs"``) is the batch of
serialized ``tf.Example`` strings, exactly as TF Serving feeds it.

Failures raise :class:`~tfs_async.testing.status.ServingStatus` with the code
TensorFlow reported, so the emulator answers the way TF Serving would.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tfs_async._proto import meta_graph_pb2
from tfs_async.errors import StatusCode
from tfs_async.testing.status import ServingStatus, invalid_argument, not_found

__all__ = ["SignatureFunction", "TensorFlowSignature", "load_signature_functions"]

SignatureFunction = Callable[[dict[str, npt.NDArray[Any]]], dict[str, npt.NDArray[Any]]]
"""A signature as the emulator calls it: input alias -> array in, output alias -> array out."""

_INSTALL_HINT = (
    "Executing a SavedModel in the emulator needs TensorFlow, which is not installed. "
    "Install the optional extra (`pip install 'tfs-async[tensorflow]'`, i.e. tensorflow-cpu), "
    "or bind Python callables to the model's signatures."
)


def _import_tensorflow() -> Any:
    """TensorFlow, imported on first use so the package never needs it."""
    try:
        import tensorflow as tf
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc
    return tf


def load_signature_functions(
    version_dir: str | os.PathLike[str], *, tags: Sequence[str] = ("serve",)
) -> Mapping[str, SignatureFunction]:
    """Load one SavedModel version with TensorFlow and return its signatures as callables.

    Args:
        version_dir: a version directory laid out as TF Serving expects it
            (``<base_path>/<version>/saved_model.pb`` plus ``variables/``).
        tags: the meta graph's tags; TF Serving loads the ``"serve"`` one.

    Returns:
        Signature key -> :class:`TensorFlowSignature`, a callable over a dict of
        numpy arrays keyed by input alias, returning a dict of numpy arrays keyed
        by output alias (strings come back as object arrays of ``bytes``).

    Raises:
        ImportError: TensorFlow is not installed (the message names the extra).
        FileNotFoundError: ``version_dir`` holds no ``saved_model.pb``.
        ServingStatus: no meta graph has ``tags`` (NOT_FOUND), or TensorFlow could
            not load the model (its code and message).
    """
    path = Path(version_dir)
    if not (path / "saved_model.pb").is_file():
        raise FileNotFoundError(f"No saved_model.pb in SavedModel directory {path}")
    _check_tags(path, tags)
    tf = _import_tensorflow()
    try:
        loaded = tf.saved_model.load(str(path), tags=list(tags))
    except tf.errors.OpError as exc:
        raise ServingStatus(StatusCode(exc.error_code), exc.message) from exc
    except (ValueError, RuntimeError) as exc:
        # Missing tags or an unreadable graph: the version fails to load, as in TF Serving.
        raise ServingStatus(
            StatusCode.INTERNAL, f"Failed to load SavedModel {path}: {exc}"
        ) from exc
    return {
        key: TensorFlowSignature(tf, loaded, key, function)
        for key, function in loaded.signatures.items()
    }


def _check_tags(path: Path, tags: Sequence[str]) -> None:
    """NOT_FOUND, in TF's words, when no meta graph carries exactly ``tags``."""
    saved = meta_graph_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
    if any(set(graph.meta_info_def.tags) == set(tags) for graph in saved.meta_graphs):
        return
    raise not_found(
        f"Could not find meta graph def matching supplied tags: {{ {','.join(sorted(tags))} }}. "
        "To inspect available tag-sets in the SavedModel, please use the SavedModel CLI: "
        "`saved_model_cli`",
    )


class TensorFlowSignature:
    """One signature of a loaded SavedModel, callable with numpy arrays.

    Holds the loaded model so its variables live as long as the callable.
    Safe to call from several threads at once (TensorFlow functions are).
    """

    def __init__(self, tf: Any, loaded: Any, key: str, function: Any) -> None:
        self._tf = tf
        self._loaded = loaded
        self._function = function
        self.key = key
        specs: Mapping[str, Any] = function.structured_input_signature[1]
        self.input_dtypes: dict[str, Any] = {alias: spec.dtype for alias, spec in specs.items()}
        """Input alias -> ``tf.DType`` the signature expects."""

    def __repr__(self) -> str:
        return f"TensorFlowSignature({self.key!r}, inputs={sorted(self.input_dtypes)})"

    def __call__(self, inputs: dict[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[Any]]:
        """Run the signature; see :func:`load_signature_functions`."""
        tf = self._tf
        if set(inputs) != set(self.input_dtypes):
            raise invalid_argument(
                f"Signature {self.key!r} expects inputs {sorted(self.input_dtypes)}, "
                f"got {sorted(inputs)}",
            )
        feeds = {alias: self._feed(alias, value) for alias, value in inputs.items()}
        try:
            outputs = self._function(**feeds)
        except tf.errors.OpError as exc:
            raise ServingStatus(StatusCode(exc.error_code), exc.message) from exc
        except (TypeError, ValueError) as exc:
            # Raised while binding arguments (e.g. a rank the function cannot take).
            raise invalid_argument(str(exc)) from exc
        return {alias: np.asarray(tensor.numpy()) for alias, tensor in outputs.items()}

    def _feed(self, alias: str, value: npt.NDArray[Any]) -> Any:
        """``value`` as a tensor of the declared dtype, never silently cast."""
        tf = self._tf
        expected = self.input_dtypes[alias]
        array = np.asarray(value)
        try:
            given = tf.string if array.dtype.kind in "OSU" else tf.as_dtype(array.dtype)
        except TypeError as exc:
            raise invalid_argument(
                f"Input {alias!r} of signature {self.key!r} has dtype {array.dtype}, "
                f"which TensorFlow cannot carry (expects {expected.name})",
            ) from exc
        if given != expected:
            raise invalid_argument(
                f"Input {alias!r} of signature {self.key!r} expects {expected.name} "
                f"but {given.name} is provided",
            )
        return tf.convert_to_tensor(array, dtype=expected)
