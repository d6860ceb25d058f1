"""SavedModel directories as TF Serving reads them, without TensorFlow.

A model's ``base_path`` holds one directory per version, named by the version
number (``00000123`` is version 123), each with a ``saved_model.pb``. Signatures
are read from the ``serve`` meta graph with our own ``SavedModel`` proto class.
They are executed by Python callables bound to signature names, or, when no
callable is bound and TensorFlow is installed, by TensorFlow itself
(:mod:`tfs_async.testing.tf_runtime`).

>>> import tempfile, pathlib
>>> with tempfile.TemporaryDirectory() as base:
...     for name in ("00000123", "7", "tmp-upload"):
...         (pathlib.Path(base) / name).mkdir()
...     list_versions(base)
[7, 123]
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy.typing as npt

from tfs_async._proto import meta_graph_pb2
from tfs_async.errors import StatusCode
from tfs_async.testing.models import ArrayDict, ModelSource, Signature, SignatureFunction
from tfs_async.testing.status import ServingStatus, failed_precondition, not_found

__all__ = ["SavedModel", "list_versions", "read_signature_defs", "version_dir"]

SERVE_TAG = "serve"


def list_versions(base_path: str | os.PathLike[str]) -> list[int]:
    """The versions under ``base_path``: sub-directories named by a non-negative integer.

    Raises ServingStatus NOT_FOUND when ``base_path`` is not a directory.
    """
    base = Path(base_path)
    if not base.is_dir():
        raise not_found(f"Could not find base path {base} for servable {base.name}")
    return sorted(int(p.name) for p in base.iterdir() if p.name.isdigit() and p.is_dir())


def version_dir(base_path: str | os.PathLike[str], version: int) -> Path:
    """The directory of ``version`` under ``base_path`` (names may be zero-padded)."""
    base = Path(base_path)
    for p in base.iterdir():
        if p.name.isdigit() and int(p.name) == version and p.is_dir():
            return p
    raise not_found(f"Could not find version {version} under base path {base}")


def read_signature_defs(
    path: str | os.PathLike[str], *, tags: Sequence[str] = (SERVE_TAG,)
) -> dict[str, meta_graph_pb2.SignatureDef]:
    """The SignatureDefs of the meta graph tagged ``tags`` in ``path/saved_model.pb``.

    Raises ServingStatus (NOT_FOUND) when there is no saved_model.pb or no such
    meta graph, (DATA_LOSS) when the file does not parse.
    """
    pb = Path(path) / "saved_model.pb"
    if not pb.is_file():
        raise not_found(
            f"Could not find SavedModel .pb or .pbtxt at supplied export directory path: {path}",
        )
    saved = meta_graph_pb2.SavedModel()
    try:
        saved.ParseFromString(pb.read_bytes())
    except Exception as exc:  # protobuf raises DecodeError, a plain Exception subclass
        raise ServingStatus(StatusCode.DATA_LOSS, f"Could not parse {pb}: {exc}") from None
    wanted = set(tags)
    for graph in saved.meta_graphs:
        if set(graph.meta_info_def.tags) == wanted:
            return {key: sig for key, sig in graph.signature_def.items()}
    tag_text = ",".join(sorted(wanted))
    raise not_found(
        f"Could not find meta graph def matching supplied tags: {{ {tag_text} }}. "
        f"To inspect available tag-sets in the SavedModel, please use the SavedModel CLI: "
        f"`saved_model_cli`",
    )


def tensorflow_available() -> bool:
    """Whether TensorFlow can be imported here (without importing it)."""
    return importlib.util.find_spec("tensorflow") is not None


class _TensorFlowRunner:
    """Loads one version with TensorFlow on first use; thread-safe."""

    def __init__(self, model: str, path: Path) -> None:
        self._model = model
        self._path = path
        self._lock = threading.Lock()
        self._functions: Mapping[str, Any] | None = None

    def function(self, key: str) -> SignatureFunction:
        def run(inputs: ArrayDict) -> dict[str, npt.NDArray[Any]]:
            functions = self._load()
            return dict(functions[key](inputs))

        return run

    def _load(self) -> Mapping[str, Any]:
        with self._lock:
            if self._functions is None:
                from tfs_async.testing import tf_runtime

                self._functions = tf_runtime.load_signature_functions(self._path)
            return self._functions


def _missing_function(model: str, version: int, key: str) -> SignatureFunction:
    def fail(inputs: ArrayDict) -> dict[str, npt.NDArray[Any]]:
        raise failed_precondition(
            f"Model {model} version {version}: signature {key!r} has no Python function bound "
            f"and TensorFlow is not installed to execute the SavedModel. Pass "
            f"SavedModel(..., functions={{{key!r}: callable}}) or install tensorflow-cpu.",
        )

    return fail


class SavedModel(ModelSource):
    """A model served from a SavedModel base path (``base_path/<version>/saved_model.pb``).

    Args:
        name: the model name clients address.
        base_path: the directory holding the version directories.
        functions: signature key -> callable over a dict of numpy arrays. A
            signature without one runs on TensorFlow when it is installed, else
            on the built-in functions of TF Serving's reference test models
            (:mod:`tfs_async.testing.reference_models`) when ``base_path`` is
            one of them, else fails with a clear error when called.
        tags: the meta graph tags to serve (TF Serving: ``serve``).
    """

    def __init__(
        self,
        name: str,
        base_path: str | os.PathLike[str],
        functions: Mapping[str, SignatureFunction] | None = None,
        *,
        tags: Sequence[str] = (SERVE_TAG,),
    ) -> None:
        if not name:
            raise ValueError("a model needs a non-empty name")
        self.name = name
        self.base_path = Path(base_path)
        self.functions: dict[str, SignatureFunction] = dict(functions or {})
        self.tags = tuple(tags)

    def available_versions(self) -> list[int]:
        """Version directories present under ``base_path`` now."""
        return list_versions(self.base_path)

    async def load(self, version: int) -> Mapping[str, Signature]:
        """Read the version's signatures (in a worker thread: it is file I/O)."""
        return await asyncio.to_thread(self._load_sync, version)

    def _load_sync(self, version: int) -> dict[str, Signature]:
        from tfs_async.testing.reference_models import reference_functions

        path = version_dir(self.base_path, version)
        defs = read_signature_defs(path, tags=self.tags)
        fallback: Mapping[str, SignatureFunction] = {}
        runner: _TensorFlowRunner | None = None
        if set(defs) - set(self.functions):
            if tensorflow_available():
                runner = _TensorFlowRunner(self.name, path)
            else:
                fallback = reference_functions(self.base_path) or {}
        out: dict[str, Signature] = {}
        for key, proto in defs.items():
            fn = self.functions.get(key)
            if fn is None and runner is not None:
                fn = runner.function(key)
            if fn is None:
                fn = fallback.get(key) or _missing_function(self.name, version, key)
            out[key] = Signature.from_proto(proto, fn)
        return out

    def for_config(self, base_path: str) -> ModelSource:
        """This model's functions served from the config's ``base_path``."""
        if not base_path or Path(base_path) == self.base_path:
            return self
        return SavedModel(self.name, base_path, self.functions, tags=self.tags)

    def __repr__(self) -> str:
        return f"SavedModel({self.name!r}, {str(self.base_path)!r})"
