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

#: The TF Lite model file a version directory may hold (TF's ``kTfLiteModelFilename``).
TFLITE_FILENAME = "model.tflite"


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
    except Exception:  # protobuf raises DecodeError, a plain Exception subclass
        # TF's ReadBinaryProto (tsl/platform/env.cc), which TF Serving's loader reports.
        raise ServingStatus(StatusCode.DATA_LOSS, f"Can't parse {pb} as binary proto") from None
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
        prefer_tflite_model: serve a version directory's ``model.tflite``, when it
            has one, instead of its SavedModel (``--prefer_tflite_model``; see
            :mod:`tfs_async.testing.tflite_runtime`; needs TensorFlow).
    """

    def __init__(
        self,
        name: str,
        base_path: str | os.PathLike[str],
        functions: Mapping[str, SignatureFunction] | None = None,
        *,
        tags: Sequence[str] = (SERVE_TAG,),
        prefer_tflite_model: bool = False,
    ) -> None:
        if not name:
            raise ValueError("a model needs a non-empty name")
        self.name = name
        self.base_path = Path(base_path)
        self.functions: dict[str, SignatureFunction] = dict(functions or {})
        self.tags = tuple(tags)
        self.prefer_tflite_model = prefer_tflite_model

    def available_versions(self) -> list[int]:
        """Version directories present under ``base_path`` now."""
        return list_versions(self.base_path)

    async def load(self, version: int) -> Mapping[str, Signature]:
        """Load the version, in a worker thread so the server keeps answering meanwhile.

        As TF Serving does, the version is fully loaded before it is reported
        AVAILABLE: ``saved_model.pb`` is read and its ``serve`` meta graph found
        (a corrupt file fails with DATA_LOSS, TF's ``Can't parse ... as binary
        proto``), and when a signature has no Python function bound and
        TensorFlow is installed, TensorFlow loads the model here (import,
        variables, init ops), not on the first request. Without TensorFlow,
        loading is reading and checking the signatures.
        """
        return await asyncio.to_thread(self._load_sync, version)

    def _load_sync(self, version: int) -> dict[str, Signature]:
        from tfs_async.testing.reference_models import reference_functions

        path = version_dir(self.base_path, version)
        if self.prefer_tflite_model and (path / TFLITE_FILENAME).is_file():
            return self._load_tflite(path / TFLITE_FILENAME)
        defs = read_signature_defs(path, tags=self.tags)
        fallback: Mapping[str, SignatureFunction] = {}
        if set(defs) - set(self.functions):
            if tensorflow_available():
                from tfs_async.testing import tf_runtime

                fallback = tf_runtime.load_signature_functions(path, tags=self.tags)
            else:
                fallback = reference_functions(self.base_path) or {}
        out: dict[str, Signature] = {}
        for key, proto in defs.items():
            fn = self.functions.get(key) or fallback.get(key)
            if fn is None:
                fn = _missing_function(self.name, version, key)
            out[key] = Signature.from_proto(proto, fn)
        return out

    def _load_tflite(self, model_file: Path) -> dict[str, Signature]:
        """TF Serving's TfLiteSession: the model's signatures, run by the TF Lite interpreter."""
        from tfs_async.testing.tflite_runtime import load_tflite_model

        return {
            key: Signature.from_proto(proto, self.functions.get(key) or function)
            for key, (proto, function) in load_tflite_model(model_file).items()
        }

    def for_config(self, base_path: str) -> ModelSource:
        """This model's functions served from the config's ``base_path``."""
        if not base_path or Path(base_path) == self.base_path:
            return self
        return SavedModel(
            self.name,
            base_path,
            self.functions,
            tags=self.tags,
            prefer_tflite_model=self.prefer_tflite_model,
        )

    def __repr__(self) -> str:
        return f"SavedModel({self.name!r}, {str(self.base_path)!r})"
