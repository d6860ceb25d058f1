"""Reading inputs as saved_model_cli users write them, and TF Serving REST request bodies."""

from __future__ import annotations

import base64
from pathlib import Path

import hypothesis.extra.numpy as hnp
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tfs_async.commands.common import UsageError
from tfs_async.commands.inputs import (
    decode_examples_request,
    decode_predict_request,
    parse_examples,
    parse_exprs,
    parse_files,
)

floats = hnp.arrays(
    np.float32,
    hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4),
    elements=st.floats(-1e6, 1e6, width=32),
)


@given(floats)
def test_row_and_columnar_bodies_give_the_same_arrays(x: npt.NDArray[np.float32]) -> None:
    rows, _ = decode_predict_request({"instances": [{"x": r} for r in x.tolist()]})
    columns, _ = decode_predict_request({"inputs": {"x": x.tolist()}})
    single, _ = decode_predict_request({"instances": x.tolist()})
    assert isinstance(rows, dict)
    assert isinstance(columns, dict)
    assert isinstance(single, np.ndarray)
    for got in (rows["x"], columns["x"], single):
        np.testing.assert_array_equal(got.astype(np.float32), x)


@given(st.lists(st.binary(max_size=8), min_size=1, max_size=5))
def test_b64_items_become_bytes(items: list[bytes]) -> None:
    body = {"instances": [{"b64": base64.b64encode(v).decode()} for v in items]}
    got, _ = decode_predict_request(body)
    assert isinstance(got, np.ndarray)
    assert got.dtype == object
    assert got.tolist() == items


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([1, 2], "expected a JSON object"),
        ({"instances": [1], "inputs": [1]}, "exactly one of"),
        ({}, "exactly one of"),
        ({"instances": []}, "non-empty list"),
        ({"instances": [{"x": 1}, {"y": 2}]}, "instance 1 does not name the inputs ['x']"),
        ({"instances": [[1, 2], [3]]}, "not a rectangular array"),
        ({"inputs": {"x": [None]}}, "expected numbers"),
        ({"inputs": {"x": [{"b64": "!!"}]}}, "bad base64"),
        ({"inputs": {"x": ["a", 1]}}, "strings mixed with int"),
        ({"inputs": {"x": [1]}, "signature_name": 3}, "'signature_name' must be a string"),
    ],
)
def test_malformed_bodies_are_usage_errors(body: object, message: str) -> None:
    with pytest.raises(UsageError, match=None) as info:
        decode_predict_request(body)
    assert message in str(info.value)


def test_signature_name_comes_back() -> None:
    inputs, sig = decode_predict_request({"signature_name": "two", "inputs": {"a": [1], "b": [2]}})
    assert sig == "two"
    assert isinstance(inputs, dict)
    assert {k: v.tolist() for k, v in inputs.items()} == {"a": [1], "b": [2]}


def test_literals_only_never_evaluated() -> None:
    got = parse_exprs(["x=[[1.0, 2]]", "y=(True, False); s='é'"])
    assert got["x"].dtype == np.float64
    assert got["y"].tolist() == [True, False]
    assert got["s"].tolist() == "é".encode()
    for expr in ("x=np.ones(2)", "x=__import__('os').system('true')", "x=[1] * 3"):
        with pytest.raises(UsageError, match="not a Python literal"):
            parse_exprs([expr])
    with pytest.raises(UsageError, match="given twice"):
        parse_exprs(["x=1;x=2"])
    with pytest.raises(UsageError, match="NAME=VALUE"):
        parse_exprs(["[1, 2]"])


def test_files(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.arange(3))
    np.savez(tmp_path / "b.npz", k=np.ones(2, np.float32))
    got = parse_files([f"a={tmp_path}/a.npy;b={tmp_path}/b.npz[k]"])
    assert got["a"].tolist() == [0, 1, 2]
    assert got["b"].dtype == np.float32
    with pytest.raises(UsageError, match=r"has no array 'z'"):
        parse_files([f"b={tmp_path}/b.npz[z]"])
    with pytest.raises(UsageError, match=r"\.npy file, it has no \[k\]"):
        parse_files([f"a={tmp_path}/a.npy[k]"])


def test_examples_json_or_literal_with_semicolons_inside() -> None:
    got = parse_examples(['a=[{"t": "x;y", "f": [1.0]}]; b=[{"n": [1, 2]}]', "[{'f': 2.0}]"])
    assert got == {"a": [{"t": "x;y", "f": [1.0]}], "b": [{"n": [1, 2]}], "": [{"f": 2.0}]}
    with pytest.raises(UsageError, match="non-empty list"):
        parse_examples(["a=[]"])


def test_examples_body_with_context_and_b64() -> None:
    body = {
        "signature_name": "regress",
        "context": {"c": {"b64": base64.b64encode(b"\x00").decode()}},
        "examples": [{"f": [1.0], "t": "a"}],
    }
    examples, context, signature = decode_examples_request(body)
    assert examples == [{"f": [1.0], "t": "a"}]
    assert context == {"c": b"\x00"}
    assert signature == "regress"
    with pytest.raises(UsageError, match="'examples'"):
        decode_examples_request({"instances": [1]})
