"""Client-side checks of a call against the model's metadata.

Checks happen before anything is sent, and fail with
:class:`~tfs_async.errors.InvalidInputError` saying what the signature expects:

>>> import numpy as np
>>> from tfs_async.types import SignatureSpec, TensorSpec
>>> x = TensorSpec("x", "DT_FLOAT", (-1,), numpy_dtype=np.dtype("float32"))
>>> sig = SignatureSpec("serving_default", "tensorflow/serving/predict", {"x": x}, {})
>>> checked = check_inputs({"x": np.array([1.0, 2.0])}, sig, ModelSpec("m"), cast=True)
>>> checked["x"].dtype
dtype('float32')
>>> check_inputs({"y": np.zeros(2)}, sig, ModelSpec("m"), cast=False)
Traceback (most recent call last):
...
tfs_async.errors.InvalidInputError: INVALID_ARGUMENT [model 'm']: ...
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from tfs_async.errors import InvalidArgumentError, InvalidInputError
from tfs_async.types import ModelSpec, SignatureSpec, TensorSpec

__all__ = [
    "check_inputs",
    "check_output_filter",
    "describe_signature",
    "name_single_input",
]


def _describe(spec: TensorSpec) -> str:
    shape = "unknown rank" if spec.shape is None else f"shape {list(spec.shape)}"
    return f"{spec.name}: {spec.dtype} {shape}"


def describe_signature(signature: SignatureSpec) -> str:
    """The signature's inputs in words, e.g. ``{x: DT_FLOAT shape [-1]}``."""
    return "{" + ", ".join(_describe(s) for s in signature.inputs.values()) + "}"


def name_single_input(
    value: Any, signature: SignatureSpec, model: ModelSpec
) -> dict[str, npt.NDArray[Any]]:
    """Give one unnamed input the name of the signature's only input."""
    if len(signature.inputs) != 1:
        raise InvalidInputError(
            f"signature {signature.name!r} has {len(signature.inputs)} inputs "
            f"{describe_signature(signature)}: pass a dict of named arrays, not one array",
            expected=describe_signature(signature),
            model=model,
        )
    (name,) = signature.inputs
    return {name: value}


def _check_dtype(
    name: str, value: npt.NDArray[Any], spec: TensorSpec, model: ModelSpec, cast: bool
) -> npt.NDArray[Any]:
    expected = spec.numpy_dtype
    if expected is None or value.dtype == expected:
        return value
    if expected.kind == "O":
        if value.dtype.kind in "SUO":
            return value
    elif cast and value.dtype.kind != "O" and np.can_cast(value.dtype, expected, "same_kind"):
        return _cast(name, value, expected, spec, model)
    hint = "" if cast else " (cast=True converts where numpy's same_kind rules allow)"
    raise InvalidInputError(
        f"input {name!r} is {value.dtype}, the signature expects {spec.dtype} ({expected}){hint}",
        input_name=name,
        expected=_describe(spec),
        model=model,
    )


def _cast(
    name: str,
    value: npt.NDArray[Any],
    expected: np.dtype[Any],
    spec: TensorSpec,
    model: ModelSpec,
) -> npt.NDArray[Any]:
    """``value.astype(expected)``, refusing values the narrower dtype cannot hold."""
    overflow = False
    if value.dtype.kind in "iu" and expected.kind in "iu" and value.size:
        info = np.iinfo(expected)
        overflow = bool(value.min() < info.min or value.max() > info.max)
    if not overflow:
        with np.errstate(over="raise"):
            try:
                return value.astype(expected)
            except FloatingPointError:
                pass
    raise InvalidInputError(
        f"input {name!r}: some {value.dtype} values do not fit {spec.dtype} ({expected})",
        input_name=name,
        expected=_describe(spec),
        model=model,
    )


def _check_shape(name: str, value: npt.NDArray[Any], spec: TensorSpec, model: ModelSpec) -> None:
    if spec.shape is None:
        return
    if value.ndim != len(spec.shape) or any(
        want not in (-1, got) for want, got in zip(spec.shape, value.shape, strict=True)
    ):
        raise InvalidInputError(
            f"input {name!r} has shape {list(value.shape)}, the signature expects "
            f"{list(spec.shape)} (-1: any size)",
            input_name=name,
            expected=_describe(spec),
            model=model,
        )


def check_inputs(
    inputs: Mapping[str, Any], signature: SignatureSpec, model: ModelSpec, *, cast: bool
) -> dict[str, npt.NDArray[Any]]:
    """Check names, dtypes and shapes; with ``cast``, convert dtypes where safe.

    Returns the inputs as numpy arrays (converted where ``cast`` allowed).
    """
    given, wanted = set(inputs), set(signature.inputs)
    if given != wanted:
        extra = sorted(given - wanted)
        missing = sorted(wanted - given)
        raise InvalidInputError(
            f"inputs do not match signature {signature.name!r}: extra {extra}, "
            f"missing {missing}; expected {describe_signature(signature)}",
            input_name=(extra or missing)[0],
            expected=describe_signature(signature),
            model=model,
        )
    checked: dict[str, npt.NDArray[Any]] = {}
    for name, raw in inputs.items():
        spec = signature.inputs[name]
        value = raw if isinstance(raw, np.ndarray) else np.asarray(raw)
        value = _check_dtype(name, value, spec, model, cast)
        _check_shape(name, value, spec, model)
        checked[name] = value
    return checked


def check_output_filter(
    output_filter: Sequence[str], signature: SignatureSpec | None, model: ModelSpec
) -> None:
    """Reject unknown or repeated output names, with TF Serving's own wording and code."""
    seen: set[str] = set()
    for alias in output_filter:
        if alias in seen:
            raise InvalidArgumentError(f"duplicate output tensor alias: {alias}", model=model)
        seen.add(alias)
        if signature is not None and alias not in signature.outputs:
            expected = ",".join(sorted(signature.outputs))
            raise InvalidArgumentError(
                f"output tensor alias not found in signature: {alias} "
                f"Outputs expected to be in the set {{{expected}}}.",
                model=model,
            )
