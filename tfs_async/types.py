"""Protocol-neutral data types shared by the client, the transports and the emulator.

Everything a transport takes or returns is one of these (plus numpy arrays), so a
gRPC and an HTTP transport are mirror images: same inputs, same outputs.

>>> spec = ModelSpec("half_plus_two", label="stable")
>>> spec
ModelSpec(name='half_plus_two', label='stable')
>>> spec.with_signature("serving_default").signature
'serving_default'
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "ClassifyRequest",
    "ClassifyResult",
    "FeatureValue",
    "Features",
    "InferenceTask",
    "ModelMetadata",
    "ModelSpec",
    "ModelVersionStatus",
    "MultiInferenceRequest",
    "MultiInferenceResult",
    "PredictRequest",
    "PredictResult",
    "RegressRequest",
    "RegressResult",
    "SignatureSpec",
    "TensorSpec",
    "VersionState",
]

PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
DEFAULT_SIGNATURE = "serving_default"


@dataclass(frozen=True)
class ModelSpec:
    """Which model, version (or label) and signature a call addresses.

    ``version`` and ``label`` are exclusive, as in TF Serving's ``ModelSpec``
    oneof; with neither, the server picks the latest available version.
    ``signature`` ``None`` means the server default (``serving_default``).
    """

    name: str
    version: int | None = None
    label: str | None = None
    signature: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"model name must be a non-empty string, got {self.name!r}")
        if self.version is not None and self.label is not None:
            raise ValueError(
                f"model {self.name!r}: give a version ({self.version}) or a label "
                f"({self.label!r}), not both"
            )
        if self.version is not None and (
            isinstance(self.version, bool) or not isinstance(self.version, int)
        ):
            raise ValueError(f"model {self.name!r}: version must be an int, got {self.version!r}")
        if self.label is not None and (not isinstance(self.label, str) or not self.label):
            raise ValueError(f"model {self.name!r}: label must be a non-empty string")

    def with_signature(self, signature: str | None) -> ModelSpec:
        """A copy addressing another signature."""
        return replace(self, signature=signature)

    def __repr__(self) -> str:
        parts = [f"name={self.name!r}"]
        if self.version is not None:
            parts.append(f"version={self.version!r}")
        if self.label is not None:
            parts.append(f"label={self.label!r}")
        if self.signature is not None:
            parts.append(f"signature={self.signature!r}")
        return f"ModelSpec({', '.join(parts)})"

    def __str__(self) -> str:
        where = ""
        if self.version is not None:
            where = f" version {self.version}"
        elif self.label is not None:
            where = f" label {self.label!r}"
        sig = f" signature {self.signature!r}" if self.signature else ""
        return f"{self.name!r}{where}{sig}"


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a signature, as the model's metadata declares it.

    ``dtype`` is TF's ``DataType`` name (``"DT_FLOAT"``); ``numpy_dtype`` is the
    matching numpy dtype, or ``None`` where numpy has none (e.g. ``DT_RESOURCE``).
    ``shape`` is ``None`` for unknown rank; ``-1`` marks an unknown dimension.
    """

    name: str
    dtype: str
    shape: tuple[int, ...] | None
    tensor_name: str = ""
    numpy_dtype: np.dtype[Any] | None = None


@dataclass(frozen=True)
class SignatureSpec:
    """A signature: its method and its named inputs and outputs."""

    name: str
    method_name: str
    inputs: Mapping[str, TensorSpec]
    outputs: Mapping[str, TensorSpec]


@dataclass(frozen=True)
class ModelMetadata:
    """GetModelMetadata's answer: the resolved model spec and every signature."""

    model: ModelSpec
    signatures: Mapping[str, SignatureSpec]

    def signature(self, name: str | None = None) -> SignatureSpec:
        """The signature called ``name`` (default ``serving_default``); KeyError if absent."""
        return self.signatures[name or DEFAULT_SIGNATURE]


class VersionState(enum.IntEnum):
    """A model version's state, as TF Serving's ``ModelVersionStatus.State``."""

    UNKNOWN = 0
    START = 10
    LOADING = 20
    AVAILABLE = 30
    UNLOADING = 40
    END = 50


@dataclass(frozen=True)
class ModelVersionStatus:
    """One version's state; ``error_code`` 0 is OK (a failed load: END plus an error)."""

    version: int
    state: VersionState
    error_code: int = 0
    error_message: str = ""


# A feature of a tf.Example: bytes/str -> bytes_list, float -> float_list,
# int/bool -> int64_list; a list or 1-D array of one kind, or a scalar.
FeatureValue = (
    str
    | bytes
    | int
    | float
    | bool
    | Sequence[str]
    | Sequence[bytes]
    | Sequence[int]
    | Sequence[float]
    | Sequence[bool]
    | npt.NDArray[Any]
)
Features = Mapping[str, FeatureValue]


@dataclass(frozen=True)
class PredictRequest:
    """A resolved Predict call as the client hands it to a transport.

    ``signature_info``, when the client knows it, lets the HTTP transport name a
    single unnamed output and give outputs their declared dtypes.
    """

    model: ModelSpec
    inputs: Mapping[str, npt.NDArray[Any]]
    output_filter: Sequence[str] = ()
    signature_info: SignatureSpec | None = None


class PredictResult(dict[str, npt.NDArray[Any]]):
    """Output name -> numpy array, plus the model spec the server resolved.

    :attr:`output` reads a single-output answer whatever its name (the
    signature's ``y``, or ``outputs``/``predictions`` from a REST answer decoded
    without metadata).

    >>> r = PredictResult({"y": np.array([3.0])}, model=ModelSpec("m", version=1))
    >>> r["y"], r.model.version, r.output
    (array([3.]), 1, array([3.]))
    """

    def __init__(
        self, outputs: Mapping[str, npt.NDArray[Any]] = {}, *, model: ModelSpec | None = None
    ) -> None:
        super().__init__(outputs)
        self.model = model

    @property
    def output(self) -> npt.NDArray[Any]:
        """The array of the only output; ValueError (naming them) if there are several.

        >>> PredictResult({"a": np.zeros(1), "b": np.ones(1)}).output
        Traceback (most recent call last):
        ...
        ValueError: the answer has 2 outputs ('a', 'b'), not one: index it by name
        """
        if len(self) != 1:
            names = tuple(self)
            raise ValueError(
                f"the answer has {len(names)} outputs {names!r}, not one: index it by name"
            )
        return next(iter(self.values()))

    def __repr__(self) -> str:
        return f"PredictResult({dict.__repr__(self)}, model={self.model!r})"


@dataclass(frozen=True)
class ClassifyRequest:
    """A Classify call: examples (and an optional shared context) for a model."""

    model: ModelSpec
    examples: Sequence[Features]
    context: Features | None = None


@dataclass(frozen=True)
class RegressRequest:
    """A Regress call: examples (and an optional shared context) for a model."""

    model: ModelSpec
    examples: Sequence[Features]
    context: Features | None = None


@dataclass(frozen=True)
class ClassifyResult:
    """Per example, the (label, score) pairs; a label is ``""`` if the model has no classes."""

    model: ModelSpec | None
    classes: list[list[tuple[str, float]]]


@dataclass(frozen=True)
class RegressResult:
    """Per example, the regressed value (float32)."""

    model: ModelSpec | None
    values: npt.NDArray[np.float32]


@dataclass(frozen=True)
class InferenceTask:
    """One task of a MultiInference call: a signature and its method (classify/regress)."""

    model: ModelSpec
    method: str  # "classify" | "regress" or the full method name

    @property
    def method_name(self) -> str:
        """The full TF method name (``tensorflow/serving/classify``)."""
        if "/" in self.method:
            return self.method
        return f"tensorflow/serving/{self.method}"


@dataclass(frozen=True)
class MultiInferenceRequest:
    """Several classify/regress signatures of one model over the same examples."""

    tasks: Sequence[InferenceTask]
    examples: Sequence[Features]
    context: Features | None = None


@dataclass(frozen=True)
class MultiInferenceResult:
    """One result per task, in task order."""

    results: list[ClassifyResult | RegressResult] = field(default_factory=list)
