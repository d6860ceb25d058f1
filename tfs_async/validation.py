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
    "has_untyped_inputs",
    "name_single_input",
    "prepare_inputs",
]

# numpy's default dtypes for Python floats and ints: an array in one of them says
# "numbers", not "this exact dtype", so it takes the signature's dtype, as a JSON
# number does when TF Serving's REST API reads it.
_DEFAULT_DTYPES = (np.dtype(np.float64), np.dtype(np.int64))


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


def has_untyped_inputs(inputs: Mapping[str, Any]) -> bool:
    """Whether some input is a plain Python value or a numpy float64/int64 array.

    Those take the signature's dtype (see :func:`prepare_inputs`).

    >>> has_untyped_inputs({"x": np.zeros(2, np.float32)}), has_untyped_inputs({"x": [1.0]})
    (False, True)
    """
    for value in inputs.values():
        if not isinstance(value, np.ndarray) or value.dtype in _DEFAULT_DTYPES:
            return True
    return False


def _json_castable(source: np.dtype[Any], target: np.dtype[Any]) -> bool:
    # What TF Serving's REST parser accepts for a JSON number of this kind.
    if source.kind in "iu":
        return target.kind in "iuf"
    if source.kind == "f":
        return target.kind == "f"
    return False


def _take_signature_dtype(
    name: str, value: npt.NDArray[Any], spec: TensorSpec, model: ModelSpec
) -> npt.NDArray[Any]:
    expected = spec.numpy_dtype
    if expected is None or value.dtype == expected or not _json_castable(value.dtype, expected):
        # Not a number the signature takes: sent as it is, the server (or validate) decides.
        return value
    if value.dtype.kind == "f":
        # As TF Serving reads a JSON number into DT_FLOAT: out of range is +-inf, no error.
        with np.errstate(over="ignore"):
            return value.astype(expected)
    return _cast(name, value, expected, spec, model)


def prepare_inputs(
    inputs: Mapping[str, Any],
    signature: SignatureSpec,
    model: ModelSpec,
    *,
    cast: bool,
    validate: bool,
) -> dict[str, Any]:
    """The inputs as they are sent, given the signature: the one input rule of the client.

    * Plain Python values (numbers, lists, scalars) and numpy float64/int64 arrays
      take the signature's dtype where TF Serving's REST API would read them into
      it (integers into any numeric dtype, checked for range; floats into float
      dtypes), so they get the same answer over gRPC as over REST.
    * Other numpy arrays keep their dtype; ``cast`` converts them where numpy's
      ``same_kind`` rules or TF Serving's REST API allow (integers into any
      numeric dtype); values that do not fit raise InvalidInputError.
    * ``validate`` checks names, dtypes and shapes afterwards (InvalidInputError);
      without it, whatever does not match is sent as it is, for the server to judge.

    >>> from tfs_async.types import TensorSpec
    >>> x = TensorSpec("x", "DT_FLOAT", (-1, 1), numpy_dtype=np.dtype("float32"))
    >>> sig = SignatureSpec("serving_default", "tensorflow/serving/predict", {"x": x}, {})
    >>> prepare_inputs({"x": [1.0, 2.0, 5.0]}, sig, ModelSpec("m"), cast=True, validate=False)
    {'x': array([1., 2., 5.], dtype=float32)}
    """
    if validate:
        return check_inputs(
            prepare_inputs(inputs, signature, model, cast=cast, validate=False),
            signature,
            model,
            cast=False,
        )
    prepared: dict[str, Any] = {}
    for name, raw in inputs.items():
        spec = signature.inputs.get(name)
        typed = isinstance(raw, np.ndarray) and raw.dtype not in _DEFAULT_DTYPES
        if spec is None or (typed and not cast):
            prepared[name] = raw
            continue
        array = raw if isinstance(raw, np.ndarray) else np.asarray(raw)
        value = array if typed else _take_signature_dtype(name, array, spec, model)
        expected = spec.numpy_dtype
        if (
            cast
            and expected is not None
            and value.dtype != expected
            and expected.kind != "O"
            and value.dtype.kind not in "SUO"
            and (
                np.can_cast(value.dtype, expected, "same_kind")
                or _json_castable(value.dtype, expected)
            )
        ):
            value = _cast(name, value, expected, spec, model)
        # Unchanged values go as the caller gave them (a list of str stays str items).
        prepared[name] = raw if value is array else value
    return prepared


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
