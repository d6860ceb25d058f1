"""Features (a mapping of name -> value) <-> ``tf.Example`` and its REST JSON form.

Each feature is a scalar or a flat list / 1-D array of one kind: ``bytes``/``str``
(``bytes_list``, str as UTF-8), floats (``float_list``) or ints and bools
(``int64_list``), the same rules TF Serving applies to the JSON ``examples`` of a
classify or regress request.

>>> ex = encode_example({"age": 42, "height": 1.8, "name": "ann"})
>>> ex.features.feature["age"].int64_list.value[0], ex.features.feature["name"].bytes_list.value[0]
(42, b'ann')
>>> example_to_json({"w": [1.0, 2.0], "id": b"\\xff"})
{'w': [1.0, 2.0], 'id': {'b64': '/w=='}}
"""

from __future__ import annotations

import base64
import enum
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tfs_async._proto import example_pb2, input_pb2
from tfs_async.errors import InvalidInputError
from tfs_async.types import Features

__all__ = ["FeatureKind", "encode_example", "encode_input", "example_to_json", "feature_values"]

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


class FeatureKind(enum.Enum):
    """Which list of a ``tf.train.Feature`` a value goes into."""

    BYTES = "bytes_list"
    FLOAT = "float_list"
    INT64 = "int64_list"


def _fail(where: str, feature: str, problem: str) -> InvalidInputError:
    return InvalidInputError(
        f"{where} feature {feature!r}: {problem}",
        input_name=feature,
        expected="a scalar or a flat list / 1-D array of one kind: bytes/str, float, or int/bool",
    )


def _kind_of(item: Any) -> FeatureKind | None:
    # bool before int: bool is an int subclass, and both go to int64_list.
    if isinstance(item, (bytes, str)):
        return FeatureKind.BYTES
    if isinstance(item, (bool, np.bool_, int, np.integer)):
        return FeatureKind.INT64
    if isinstance(item, (float, np.floating)):
        return FeatureKind.FLOAT
    return None


def _from_array(
    arr: np.ndarray[Any, Any], where: str, feature: str
) -> tuple[FeatureKind, list[Any]]:
    if arr.ndim > 1:
        raise _fail(where, feature, f"expected at most 1 dimension, got shape {arr.shape}")
    kind_char = arr.dtype.kind
    if kind_char == "f":
        return FeatureKind.FLOAT, arr.astype(np.float32).ravel().tolist()
    if kind_char in "iub":
        if kind_char == "u" and arr.size and int(arr.max()) > _INT64_MAX:
            raise _fail(where, feature, "value beyond int64; only int64 is supported")
        return FeatureKind.INT64, arr.astype(np.int64).ravel().tolist()
    if kind_char in "SUO":
        return _from_items(arr.ravel().tolist(), where, feature)
    raise _fail(where, feature, f"dtype {arr.dtype} cannot be a tf.Example feature")


def _from_items(items: Sequence[Any], where: str, feature: str) -> tuple[FeatureKind, list[Any]]:
    if not items:
        raise _fail(
            where, feature, "an empty list has no kind; pass an empty numpy array of the dtype"
        )
    first = _kind_of(items[0])
    out: list[Any] = []
    for i, item in enumerate(items):
        kind = _kind_of(item)
        if kind is None:
            raise _fail(
                where, feature, f"element {i} is {type(item).__name__} {item!r}, not a scalar"
            )
        if kind is not first:
            raise _fail(
                where,
                feature,
                f"mixes kinds: element {i} is {kind.name.lower()} but element 0 is "
                f"{first.name.lower() if first else '?'}",
            )
        if kind is FeatureKind.BYTES:
            out.append(item.encode("utf-8") if isinstance(item, str) else bytes(item))
        elif kind is FeatureKind.INT64:
            value = int(item)
            if not _INT64_MIN <= value <= _INT64_MAX:
                raise _fail(where, feature, f"element {i} ({value}) is outside int64")
            out.append(value)
        else:
            out.append(float(item))
    assert first is not None
    return first, out


def feature_values(
    feature: str, value: Any, *, where: str = "example"
) -> tuple[FeatureKind, list[Any], bool]:
    """Validate one feature: its kind, its values (bytes/int/float) and whether it was a scalar.

    Raises :class:`InvalidInputError` naming the feature for ``None``, nested lists,
    mixed kinds and unsupported dtypes.
    """
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            kind, values = _from_array(value.reshape(1), where, feature)
            return kind, values, True
        kind, values = _from_array(value, where, feature)
        return kind, values, False
    if _kind_of(value) is not None:
        kind, values = _from_items([value], where, feature)
        return kind, values, True
    if isinstance(value, Sequence):
        kind, values = _from_items(list(value), where, feature)
        return kind, values, False
    raise _fail(where, feature, f"got {type(value).__name__} {value!r}")


def encode_example(features: Features, *, name: str = "example") -> example_pb2.Example:
    """A ``tf.Example`` holding ``features``; ``name`` says which example in errors.

    >>> encode_example({"x": [1, 2]}).features.feature["x"].int64_list.value[:]
    [1, 2]
    """
    if not isinstance(features, Mapping):
        raise InvalidInputError(
            f"{name}: expected a mapping of feature name -> value, got {type(features).__name__}",
            input_name=name,
            expected="a mapping of feature name -> value",
        )
    example = example_pb2.Example()
    feature_map = example.features.feature
    for key, value in features.items():
        kind, values, _ = feature_values(key, value, where=name)
        getattr(feature_map[key], kind.value).value.extend(values)
    return example


def encode_input(examples: Sequence[Features], context: Features | None = None) -> input_pb2.Input:
    """The ``Input`` of a classify/regress/multi-inference request.

    ``example_list`` without ``context``, ``example_list_with_context`` with it.
    An empty ``examples`` raises :class:`InvalidInputError` (TF Serving would say
    "Input is empty.").

    >>> encode_input([{"x": 1.0}], context={"c": "k"}).WhichOneof("kind")
    'example_list_with_context'
    """
    if isinstance(examples, Mapping) or not examples:
        raise InvalidInputError(
            "examples: expected a non-empty sequence of feature mappings",
            input_name="examples",
            expected="a non-empty sequence of feature mappings",
        )
    encoded = [encode_example(ex, name=f"examples[{i}]") for i, ex in enumerate(examples)]
    if context is None:
        return input_pb2.Input(example_list=input_pb2.ExampleList(examples=encoded))
    return input_pb2.Input(
        example_list_with_context=input_pb2.ExampleListWithContext(
            examples=encoded, context=encode_example(context, name="context")
        )
    )


def example_to_json(features: Features, *, name: str = "example") -> dict[str, Any]:
    """One example in TF Serving's REST form: bytes as ``{"b64": ...}``, floats as floats.

    str stays a JSON string; floats are Python floats, which orjson writes with a
    fraction (``2.0``) so TF reads them as floats, not ints. Non-finite floats cannot
    be written as JSON numbers by orjson (they become ``null``), so avoid them here.
    """
    out: dict[str, Any] = {}
    for key, value in features.items():
        kind, values, scalar = feature_values(key, value, where=name)
        if kind is FeatureKind.BYTES:
            # Re-read the caller's items: str stays a string, bytes always go as b64.
            raw = np.asarray(value, dtype=object).ravel().tolist()
            values = [v if isinstance(v, str) else _b64(v) for v in raw]
        out[key] = values[0] if scalar else values
    return out


def _b64(value: bytes) -> dict[str, str]:
    return {"b64": base64.b64encode(value).decode("ascii")}
