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
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tfs_async._proto import meta_graph_pb2
from tfs_async.errors import StatusCode
from tfs_async.testing.status import ServingStatus, invalid_argument, not_found

__all__ = [
    "SessionSignature",
    "SignatureFunction",
    "TensorFlowSignature",
    "load_signature_functions",
]

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
    meta_graph = _meta_graph(path, tags)
    tf = _import_tensorflow()
    if not _has_object_graph(path, tags):
        # A TF1 SavedModel (no object graph): load it into a Session, as TF Serving does.
        return _load_into_session(tf, path, tags, meta_graph)
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


def _load_into_session(
    tf: Any, path: Path, tags: Sequence[str], meta_graph: meta_graph_pb2.MetaGraphDef
) -> Mapping[str, SignatureFunction]:
    """TF Serving's LoadSavedModel for a TF1 model: restore, assets, then main_op/legacy_init_op.

    ``tf.saved_model.load`` wraps TF1 signatures as functions and checks their
    declared shapes against the graph, which some TF1 models (TF Serving's
    ``saved_model_half_plus_three``, our ``tf1_half_plus_three``) fail; a Session
    feeds and fetches the signature's tensors by name, as ``Session::Run`` does in
    TF Serving.
    """
    graph = tf.Graph()
    session = tf.compat.v1.Session(graph=graph)
    try:
        with graph.as_default():
            tf.compat.v1.saved_model.loader.load(session, list(tags), str(path))
    except tf.errors.OpError as exc:
        session.close()
        raise ServingStatus(StatusCode(exc.error_code), exc.message) from exc
    except (ValueError, RuntimeError, OSError) as exc:
        session.close()
        raise ServingStatus(
            StatusCode.INTERNAL, f"Failed to load SavedModel {path}: {exc}"
        ) from exc
    return {
        key: SessionSignature(tf, session, key, signature_def)
        for key, signature_def in meta_graph.signature_def.items()
    }


def _has_object_graph(path: Path, tags: Sequence[str]) -> bool:
    """Whether the meta graph has a TF2 object graph (read with TF's own proto class)."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
    return any(
        set(graph.meta_info_def.tags) == set(tags) and graph.HasField("object_graph_def")
        for graph in saved.meta_graphs
    )


def _meta_graph(path: Path, tags: Sequence[str]) -> meta_graph_pb2.MetaGraphDef:
    """The meta graph tagged ``tags``; NOT_FOUND, in TF's words, when there is none."""
    saved = meta_graph_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
    for graph in saved.meta_graphs:
        if set(graph.meta_info_def.tags) == set(tags):
            return graph
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
        expected = self.input_dtypes[alias]
        array = _checked_array(self._tf, self.key, alias, expected, value)
        return self._tf.convert_to_tensor(array, dtype=expected)


class SessionSignature:
    """One signature of a TF1 SavedModel loaded into a Session, callable with numpy arrays.

    Feeds the signature's input tensors and fetches its output tensors by name,
    as TF Serving's ``Session::Run`` does. ``Session.run`` is thread-safe.
    """

    def __init__(
        self, tf: Any, session: Any, key: str, signature_def: meta_graph_pb2.SignatureDef
    ) -> None:
        self._tf = tf
        self._session = session
        self.key = key
        self._feeds = {alias: info.name for alias, info in signature_def.inputs.items()}
        self._fetches = {alias: info.name for alias, info in signature_def.outputs.items()}
        # Session::Run checks a feed against the graph tensor, not the SignatureDef's
        # TensorInfo (half_plus_three's regress input is declared float, fed Examples).
        self.input_dtypes: dict[str, Any] = {
            alias: session.graph.get_tensor_by_name(name).dtype
            for alias, name in self._feeds.items()
        }
        """Input alias -> ``tf.DType`` of the graph tensor it feeds."""
        self._lock = threading.Lock()
        self._callables: dict[tuple[tuple[str, ...], tuple[str, ...]], Any] = {}

    def _callable(self, aliases: Sequence[str], fetch_aliases: Sequence[str]) -> Any:
        """A Session callable over these feeds and fetches, made once per combination.

        Session.run checks fed shapes against the graph's static shapes, which
        TF Serving's C++ ``Session::Run`` does not (``half_plus_three`` declares
        ``x`` as [?, 1] and serves [1.0, 2.0]); a callable made from
        ``CallableOptions`` feeds the arrays as they are.
        """
        key = (tuple(aliases), tuple(fetch_aliases))
        with self._lock:
            run = self._callables.get(key)
            if run is None:
                from tensorflow.core.protobuf import config_pb2

                options = config_pb2.CallableOptions(
                    feed=[self._feeds[a] for a in aliases],
                    fetch=[self._fetches[a] for a in fetch_aliases],
                )
                run = self._session._make_callable_from_options(options)
                self._callables[key] = run
        return run

    def __repr__(self) -> str:
        return f"SessionSignature({self.key!r}, inputs={sorted(self.input_dtypes)})"

    def __call__(self, inputs: dict[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[Any]]:
        """Run the signature; see :func:`load_signature_functions`."""
        tf = self._tf
        if set(inputs) != set(self._feeds):
            raise invalid_argument(
                f"Signature {self.key!r} expects inputs {sorted(self._feeds)}, "
                f"got {sorted(inputs)}",
            )
        aliases = sorted(inputs)
        arrays = []
        for alias in aliases:
            expected = self.input_dtypes[alias]
            array = _checked_array(tf, self.key, alias, expected, inputs[alias])
            if expected != tf.string:
                array = array.astype(expected.as_numpy_dtype, copy=False)
            arrays.append(array)
        fetch_aliases = sorted(self._fetches)
        try:
            outputs = self._callable(aliases, fetch_aliases)(*arrays)
        except tf.errors.OpError as exc:
            raise ServingStatus(StatusCode(exc.error_code), exc.message) from exc
        return {
            alias: np.asarray(value) for alias, value in zip(fetch_aliases, outputs, strict=True)
        }


def _checked_array(
    tf: Any, key: str, alias: str, expected: Any, value: npt.NDArray[Any]
) -> npt.NDArray[Any]:
    """``value`` as an array whose dtype is ``expected``, never silently cast."""
    array = np.asarray(value)
    try:
        given = tf.string if array.dtype.kind in "OSU" else tf.as_dtype(array.dtype)
    except TypeError as exc:
        raise invalid_argument(
            f"Input {alias!r} of signature {key!r} has dtype {array.dtype}, "
            f"which TensorFlow cannot carry (expects {expected.name})",
        ) from exc
    if given != expected:
        raise invalid_argument(
            f"Input {alias!r} of signature {key!r} expects {expected.name} "
            f"but {given.name} is provided",
        )
    return array
