"""Model definitions the emulator serves: signatures, Python models and model sources.

A *signature* declares named inputs and outputs (dtype, shape with ``-1`` for an
unknown dimension, optional graph tensor name), a method (predict, classify or
regress) and the function that computes it: a callable, sync or async, over a
dict of numpy arrays returning a dict of numpy arrays.

>>> import numpy as np
>>> half_plus_two = signature(
...     lambda t: {"y": 0.5 * t["x"] + 2},
...     inputs={"x": ("DT_FLOAT", [-1])},
...     outputs={"y": ("DT_FLOAT", [-1])},
... )
>>> model = PythonModel("half_plus_two", {"serving_default": half_plus_two})
>>> model.available_versions()
[1]
>>> model.signatures(1)["serving_default"].method_name
'tensorflow/serving/predict'

Several versions: ``PythonModel("din", versions={1: {...}, 2: {...}})``.

Classify and regress signatures receive, as TF's do, the batch of serialized
``tf.Example`` protos in their input tensor (alias ``"inputs"``); turn them into
feature arrays with :func:`parse_examples`.
"""

from __future__ import annotations

import abc
import asyncio
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from tfs_async._proto import example_pb2, meta_graph_pb2, tensor_shape_pb2, types_pb2
from tfs_async.codec import dtypes
from tfs_async.testing.status import InvalidExampleError

__all__ = [
    "CLASSIFY_METHOD",
    "PREDICT_METHOD",
    "REGRESS_METHOD",
    "ArrayDict",
    "ModelSource",
    "PythonModel",
    "Signature",
    "SignatureFunction",
    "TensorDef",
    "classify_signature",
    "dtype_enum",
    "parse_examples",
    "regress_signature",
    "signature",
    "tensor_def",
]

PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
_METHODS = {"predict": PREDICT_METHOD, "classify": CLASSIFY_METHOD, "regress": REGRESS_METHOD}

ArrayDict = dict[str, npt.NDArray[Any]]
SignatureFunction = Callable[[ArrayDict], Mapping[str, Any] | Awaitable[Mapping[str, Any]]]
DTypeLike = str | int | np.dtype[Any] | type
ShapeLike = Sequence[int] | None


def dtype_enum(dtype: DTypeLike) -> dtypes.DataType:
    """TF's ``DataType`` value for a name (``"DT_FLOAT"``), enum value or numpy dtype.

    >>> dtype_enum("DT_FLOAT"), dtype_enum("float32"), dtype_enum(np.int64)
    (1, 1, 9)
    """
    if isinstance(dtype, bool):
        raise ValueError(f"not a TF or numpy dtype: {dtype!r}")
    if isinstance(dtype, int):
        types_pb2.DataType.Name(dtype)  # ValueError for an unknown value
        return cast(dtypes.DataType, dtype)
    if isinstance(dtype, str) and dtype.startswith("DT_"):
        return dtypes.datatype_from_name(dtype)
    if dtype in ("string", "bytes", bytes, str):
        return types_pb2.DT_STRING
    try:
        np_dtype = np.dtype(dtype)
    except TypeError as exc:
        raise ValueError(f"not a TF or numpy dtype: {dtype!r}") from exc
    return dtypes.to_datatype(np_dtype, name=str(dtype))


@dataclass(frozen=True)
class TensorDef:
    """One input or output of a signature.

    Attributes:
        dtype: TF ``DataType`` value (see :func:`dtype_enum`).
        shape: dims with ``-1`` for an unknown one, or ``None`` for unknown rank.
        tensor_name: the graph tensor name shown in metadata (``"x:0"``); may be empty.
    """

    dtype: dtypes.DataType
    shape: tuple[int, ...] | None = None
    tensor_name: str = ""

    def to_proto(self) -> meta_graph_pb2.TensorInfo:
        """The ``TensorInfo`` TF Serving puts in a ``SignatureDef``."""
        info = meta_graph_pb2.TensorInfo(name=self.tensor_name, dtype=self.dtype)
        if self.shape is None:
            info.tensor_shape.unknown_rank = True
        else:
            info.tensor_shape.CopyFrom(
                tensor_shape_pb2.TensorShapeProto(
                    dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in self.shape]
                )
            )
        return info


TensorLike = TensorDef | DTypeLike | tuple[DTypeLike, ShapeLike]


def tensor_def(dtype: DTypeLike, shape: ShapeLike = None, *, name: str = "") -> TensorDef:
    """A :class:`TensorDef` from friendly values.

    >>> tensor_def("float32", [-1, 1], name="x:0")
    TensorDef(dtype=1, shape=(-1, 1), tensor_name='x:0')
    """
    return TensorDef(
        dtype=dtype_enum(dtype),
        shape=None if shape is None else tuple(int(d) for d in shape),
        tensor_name=name,
    )


def _as_tensor_def(value: TensorLike) -> TensorDef:
    if isinstance(value, TensorDef):
        return value
    if isinstance(value, tuple):
        dtype, shape = value
        return tensor_def(dtype, shape)
    return tensor_def(value)


@dataclass(frozen=True)
class Signature:
    """A named computation of a model version: its ``SignatureDef`` plus a function.

    ``function`` may be ``None`` for a SavedModel signature that will be executed
    by TensorFlow; calling it then raises a clear error if TensorFlow is absent.
    """

    inputs: Mapping[str, TensorDef]
    outputs: Mapping[str, TensorDef]
    method_name: str = PREDICT_METHOD
    function: SignatureFunction | None = field(default=None, compare=False)
    proto: meta_graph_pb2.SignatureDef | None = field(default=None, compare=False, repr=False)
    """The ``SignatureDef`` read from a SavedModel, served verbatim in metadata."""

    def to_proto(self) -> meta_graph_pb2.SignatureDef:
        """The ``SignatureDef`` served in model metadata."""
        if self.proto is not None:
            copy = meta_graph_pb2.SignatureDef()
            copy.CopyFrom(self.proto)
            return copy
        sig = meta_graph_pb2.SignatureDef(method_name=self.method_name)
        for alias, spec in self.inputs.items():
            sig.inputs[alias].CopyFrom(spec.to_proto())
        for alias, spec in self.outputs.items():
            sig.outputs[alias].CopyFrom(spec.to_proto())
        return sig

    def with_function(self, function: SignatureFunction | None) -> Signature:
        """A copy computed by ``function``."""
        return Signature(self.inputs, self.outputs, self.method_name, function, self.proto)

    @classmethod
    def from_proto(
        cls, proto: meta_graph_pb2.SignatureDef, function: SignatureFunction | None = None
    ) -> Signature:
        """A signature declared by a ``SignatureDef`` (e.g. from a SavedModel)."""

        def spec(info: meta_graph_pb2.TensorInfo) -> TensorDef:
            shape = info.tensor_shape
            dims = None if shape.unknown_rank else tuple(int(d.size) for d in shape.dim)
            return TensorDef(dtype=info.dtype, shape=dims, tensor_name=info.name)

        return cls(
            inputs={k: spec(v) for k, v in proto.inputs.items()},
            outputs={k: spec(v) for k, v in proto.outputs.items()},
            method_name=proto.method_name,
            function=function,
            proto=proto,
        )

    async def call(self, inputs: ArrayDict) -> dict[str, npt.NDArray[Any]]:
        """Run the function: an async one on the loop, a sync one in a worker thread.

        Outputs come back as numpy arrays (scalars and lists are converted).
        """
        if self.function is None:
            raise RuntimeError("signature has no function bound")
        if inspect.iscoroutinefunction(self.function):
            result = await self.function(inputs)
        else:
            # A sync model may be slow: run it off the loop so the server keeps serving.
            result = await asyncio.to_thread(self.function, inputs)
            if inspect.isawaitable(result):
                result = await result
        if not isinstance(result, Mapping):
            raise TypeError(f"signature function returned {type(result).__name__}, not a dict")
        return {str(k): np.asarray(v) for k, v in result.items()}


def _method_name(method: str) -> str:
    if "/" in method:
        return method
    try:
        return _METHODS[method]
    except KeyError:
        raise ValueError(
            f"unknown method {method!r}; expected predict, classify, regress or a full name"
        ) from None


def signature(
    function: SignatureFunction | None,
    *,
    inputs: Mapping[str, TensorLike],
    outputs: Mapping[str, TensorLike],
    method: str = "predict",
) -> Signature:
    """Declare a signature.

    ``inputs``/``outputs`` map an alias to a :class:`TensorDef`, a dtype, or a
    ``(dtype, shape)`` pair; ``method`` is ``predict``, ``classify``, ``regress``
    or a full TF method name.

    >>> sig = signature(lambda t: {"y": t["x"] * 2}, inputs={"x": "DT_INT64"},
    ...                 outputs={"y": ("int64", [-1])})
    >>> sig.outputs["y"]
    TensorDef(dtype=9, shape=(-1,), tensor_name='')
    """
    return Signature(
        inputs={k: _as_tensor_def(v) for k, v in inputs.items()},
        outputs={k: _as_tensor_def(v) for k, v in outputs.items()},
        method_name=_method_name(method),
        function=function,
    )


def classify_signature(
    function: SignatureFunction | None,
    *,
    input_alias: str = "inputs",
    classes: bool = True,
    scores: bool = True,
    input_name: str = "",
) -> Signature:
    """A classify signature: batch of serialized Examples in, ``classes``/``scores`` out.

    ``function`` gets ``{input_alias: <bytes array of serialized tf.Example>}``
    and returns ``"classes"`` (bytes labels, shape [batch, n]) and/or
    ``"scores"`` (float, shape [batch, n]).
    """
    outputs: dict[str, TensorLike] = {}
    if classes:
        outputs["classes"] = ("DT_STRING", [-1, -1])
    if scores:
        outputs["scores"] = ("DT_FLOAT", [-1, -1])
    return signature(
        function,
        inputs={input_alias: tensor_def("DT_STRING", None, name=input_name)},
        outputs=outputs,
        method="classify",
    )


def regress_signature(
    function: SignatureFunction | None, *, input_alias: str = "inputs", input_name: str = ""
) -> Signature:
    """A regress signature: batch of serialized Examples in, ``outputs`` (float, [batch]) out."""
    return signature(
        function,
        inputs={input_alias: tensor_def("DT_STRING", None, name=input_name)},
        outputs={"outputs": ("DT_FLOAT", [-1, 1])},
        method="regress",
    )


def parse_examples(
    serialized: npt.ArrayLike, features: Mapping[str, DTypeLike]
) -> dict[str, npt.NDArray[Any]]:
    """Parse a batch of serialized ``tf.Example`` into one array per feature.

    Each feature becomes an array of shape ``[batch, k]`` (``k`` values per
    example, which must agree across the batch), with ``features[name]`` as
    dtype: floats from ``float_list``, ints from ``int64_list``, bytes from
    ``bytes_list``. A missing feature, a feature of another type or a different
    number of values raise :class:`~tfs_async.testing.status.InvalidExampleError`
    (a ``ValueError``) with TensorFlow's ParseExample message, which the
    emulator answers as INVALID_ARGUMENT, as TF Serving does.

    >>> ex = example_pb2.Example()
    >>> ex.features.feature["x"].float_list.value.append(2.0)
    >>> parse_examples(np.array([ex.SerializeToString()], dtype=object), {"x": np.float32})
    {'x': array([[2.]], dtype=float32)}
    >>> ex.features.feature["x"].int64_list.value.append(2)
    >>> try:
    ...     parse_examples([ex.SerializeToString()], {"x": np.float32})
    ... except InvalidExampleError as err:
    ...     print(err.code.name, err.message.split(".  ")[1])
    INVALID_ARGUMENT Data types don't match. Data type: int64 but expected type: float
    """
    batch = np.asarray(serialized, dtype=object).reshape(-1)
    columns: dict[str, list[list[Any]]] = {name: [] for name in features}
    kinds = {name: _example_kind(dtype) for name, dtype in features.items()}
    for i, raw in enumerate(batch):
        example = example_pb2.Example()
        example.ParseFromString(bytes(raw))
        for name in features:
            expected_kind, expected_type = kinds[name]
            if name not in example.features.feature:
                raise InvalidExampleError(
                    f"Name: <unknown>, Feature: {name} (data type: {expected_type}) is required "
                    "but could not be found."
                )
            feat = example.features.feature[name]
            kind = feat.WhichOneof("kind")
            if kind is not None and kind != expected_kind:
                raise InvalidExampleError(
                    f"Name: <unknown>, Key: {name}, Index: {i}.  Data types don't match. "
                    f"Data type: {_EXAMPLE_TYPES[kind]} but expected type: {expected_type}"
                )
            values: list[Any] = list(getattr(feat, kind).value) if kind else []
            rows = columns[name]
            if rows and len(values) != len(rows[0]):
                raise InvalidExampleError(
                    f"Name: <unknown>, Key: {name}, Index: {i}.  Number of {expected_type} values "
                    f"!= expected.  Values size: {len(values)} but output shape: [{len(rows[0])}]"
                )
            rows.append(values)
    out: dict[str, npt.NDArray[Any]] = {}
    for name, dtype in features.items():
        rows = columns[name]
        np_dtype = dtypes.to_numpy_dtype(dtype_enum(dtype), name=name)
        width = len(rows[0]) if rows else 0
        out[name] = np.array(rows, dtype=np_dtype).reshape(len(rows), width)
    return out


# tf.Example list kind -> the type name TF's ParseExample errors use.
_EXAMPLE_TYPES = {"float_list": "float", "int64_list": "int64", "bytes_list": "string"}


def _example_kind(dtype: DTypeLike) -> tuple[str, str]:
    """The Example list a feature of ``dtype`` is read from, and TF's name for its type."""
    np_dtype = dtypes.to_numpy_dtype(dtype_enum(dtype))
    if np_dtype.kind == "f":
        return "float_list", "float"
    if np_dtype.kind in "iub":
        return "int64_list", "int64"
    return "bytes_list", "string"


class ModelSource(abc.ABC):
    """Where a model's versions come from (TF Serving's storage path source + loader).

    The core asks :meth:`available_versions` what exists (as TF Serving lists the
    version directories under ``base_path``), applies the version policy, and
    calls :meth:`load` for each version to serve.
    """

    name: str

    @abc.abstractmethod
    def available_versions(self) -> list[int]:
        """Versions that exist now, ascending."""

    @abc.abstractmethod
    async def load(self, version: int) -> Mapping[str, Signature]:
        """Load one version: its signatures by name. Raising marks the load failed."""

    def for_config(self, base_path: str) -> ModelSource:
        """The source to use when a models.config entry of this name names ``base_path``.

        Python models ignore ``base_path``; SavedModel sources serve from it.
        """
        return self


class PythonModel(ModelSource):
    """A model defined in Python: one or more versions, each a set of named signatures.

    ``PythonModel(name, signatures)`` serves ``signatures`` as ``version``
    (default 1); ``PythonModel(name, versions={1: {...}, 2: {...}})`` serves
    several. :meth:`add_version`/:meth:`remove_version` change what exists,
    like adding or deleting a version directory, for the next config poll.
    """

    def __init__(
        self,
        name: str,
        signatures: Mapping[str, Signature] | None = None,
        *,
        versions: Mapping[int, Mapping[str, Signature]] | None = None,
        version: int = 1,
        fail_versions: Mapping[int, str] | None = None,
    ) -> None:
        """Args:
        name: the model name clients address.
        signatures: the signatures of the single version ``version``.
        versions: version -> signatures, instead of ``signatures``.
        version: the version number used with ``signatures``.
        fail_versions: version -> error message; loading it fails (shows END with an error).
        """
        if not name:
            raise ValueError("a model needs a non-empty name")
        if (signatures is None) == (versions is None):
            raise ValueError(f"model {name!r}: give either signatures or versions, not both")
        self.name = name
        self._versions: dict[int, dict[str, Signature]] = (
            {version: dict(signatures or {})}
            if versions is None
            else {int(v): dict(s) for v, s in versions.items()}
        )
        self._fail = dict(fail_versions or {})
        for v in self._fail:
            self._versions.setdefault(v, {})
        for v, sigs in self._versions.items():
            if v < 0:
                raise ValueError(f"model {name!r}: version {v} is negative")
            for key, sig in sigs.items():
                if not isinstance(sig, Signature):
                    raise TypeError(
                        f"model {name!r} version {v}: signature {key!r} is "
                        f"{type(sig).__name__}, expected tfs_async.testing.models.Signature"
                    )

    def available_versions(self) -> list[int]:
        """The versions defined, ascending."""
        return sorted(self._versions)

    def signatures(self, version: int) -> Mapping[str, Signature]:
        """The signatures of ``version`` (KeyError if it is not defined)."""
        return self._versions[version]

    def add_version(self, version: int, signatures: Mapping[str, Signature]) -> None:
        """Define (or replace) a version; served after the next config poll or reload."""
        self._versions[int(version)] = dict(signatures)
        self._fail.pop(int(version), None)

    def remove_version(self, version: int) -> None:
        """Remove a version, like deleting its directory."""
        self._versions.pop(version, None)
        self._fail.pop(version, None)

    async def load(self, version: int) -> Mapping[str, Signature]:
        """The version's signatures; raises for a version set to fail."""
        if version in self._fail:
            raise RuntimeError(self._fail[version])
        try:
            return self._versions[version]
        except KeyError:
            raise RuntimeError(f"model {self.name!r} has no version {version}") from None

    def __repr__(self) -> str:
        return f"PythonModel({self.name!r}, versions={self.available_versions()})"
