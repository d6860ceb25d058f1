"""Features -> tf.Example / Input / REST example JSON."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from tfs_async._proto import example_pb2
from tfs_async.codec.example import encode_example, encode_input, example_to_json
from tfs_async.errors import InvalidInputError


def kinds(example: example_pb2.Example) -> dict[str, tuple[str | None, list[Any]]]:
    out: dict[str, tuple[str | None, list[Any]]] = {}
    for key, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        out[key] = (kind, list(getattr(feature, kind).value) if kind else [])
    return out


def test_each_python_kind_goes_to_its_list() -> None:
    example = encode_example(
        {
            "s": "h\u00e9",
            "b": b"\xff",
            "f": 0.5,
            "i": 7,
            "t": True,
            "fl": [1.5, 2.5],
            "il": [1, True, np.int64(3)],  # type: ignore[dict-item]  # mixed lists are accepted at run time
            "sl": ["a", b"b"],  # type: ignore[dict-item]  # mixed lists are accepted at run time
            "arr_f": np.array([0.25, 1.0], np.float32),
            "arr_i": np.array([1, 2], np.uint8),
            "arr_b": np.array([True, False]),
            "arr_s": np.array(["x", "y"]),
            "np_scalar": np.float64(3.0),
            "empty": np.array([], np.float32),
        }
    )
    assert kinds(example) == {
        "s": ("bytes_list", ["h\u00e9".encode()]),
        "b": ("bytes_list", [b"\xff"]),
        "f": ("float_list", [0.5]),
        "i": ("int64_list", [7]),
        "t": ("int64_list", [1]),
        "fl": ("float_list", [1.5, 2.5]),
        "il": ("int64_list", [1, 1, 3]),
        "sl": ("bytes_list", [b"a", b"b"]),
        "arr_f": ("float_list", [0.25, 1.0]),
        "arr_i": ("int64_list", [1, 2]),
        "arr_b": ("int64_list", [1, 0]),
        "arr_s": ("bytes_list", [b"x", b"y"]),
        "np_scalar": ("float_list", [3.0]),
        "empty": ("float_list", []),
    }


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (None, "NoneType"),
        ([1, None], "element 1 is NoneType"),
        ([[1], 2], "element 0 is list"),
        ([1, 2.0], "mixes kinds: element 1 is float but element 0 is int64"),
        (["a", 1], "mixes kinds"),
        ([], "empty list"),
        (np.zeros((2, 2)), "at most 1 dimension"),
        (np.array([1 + 2j]), "complex128"),
        (np.array([2**64 - 1], np.uint64), "beyond int64"),
        ([2**63], "outside int64"),
        ({"a": 1}, "dict"),
    ],
    ids=[
        "none",
        "none-item",
        "nested",
        "int-then-float",
        "str-then-int",
        "empty",
        "2d",
        "complex",
        "uint64",
        "big-int",
        "dict",
    ],
)
def test_bad_features_name_the_feature(value: Any, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match) as info:
        encode_example({"ok": 1, "names": value}, name="examples[3]")
    assert info.value.input_name == "names"
    assert "examples[3] feature 'names'" in str(info.value)


def test_encode_input_forms() -> None:
    plain = encode_input([{"x": 1.0}, {"x": 2.0}])
    assert plain.WhichOneof("kind") == "example_list"
    assert len(plain.example_list.examples) == 2
    with_context = encode_input([{"x": 1.0}], context={"user": "u1"})
    assert with_context.WhichOneof("kind") == "example_list_with_context"
    ctx = with_context.example_list_with_context.context
    assert ctx.features.feature["user"].bytes_list.value == [b"u1"]
    with pytest.raises(InvalidInputError, match="non-empty"):
        encode_input([])
    with pytest.raises(InvalidInputError, match=r"examples\[1\] feature 'x'"):
        encode_input([{"x": 1.0}, {"x": None}])  # type: ignore[dict-item]  # mixed lists are accepted at run time


def test_example_to_json_keeps_floats_floats_and_bytes_b64() -> None:
    doc = example_to_json(
        {
            "f": 2.0,
            "fl": np.array([1.0, 3.0], np.float32),
            "i": 2,
            "s": "text",
            "b": b"\x00\xff",
            "sl": ["a", b"b"],  # type: ignore[dict-item]  # mixed lists are accepted at run time
            "t": True,
        }
    )
    assert doc == {
        "f": 2.0,
        "fl": [1.0, 3.0],
        "i": 2,
        "s": "text",
        "b": {"b64": "AP8="},
        "sl": ["a", {"b64": "Yg=="}],
        "t": 1,
    }
    # TF tells float from int by the JSON token: whole floats must keep their ".0".
    text = orjson.dumps(doc)
    assert b'"f":2.0' in text
    assert b'"fl":[1.0,3.0]' in text
    assert b'"i":2,' in text
