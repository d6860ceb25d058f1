"""Client-side input checks against a signature, and the metadata cache."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tfs_async.errors import InvalidArgumentError, InvalidInputError
from tfs_async.types import ModelSpec, SignatureSpec, TensorSpec
from tfs_async.validation import (
    check_inputs,
    check_output_filter,
    name_single_input,
)

MODEL = ModelSpec("m")
X = TensorSpec("x", "DT_FLOAT", (-1, 3), numpy_dtype=np.dtype("float32"))
S = TensorSpec("s", "DT_STRING", (-1,), numpy_dtype=np.dtype(object))
SIG = SignatureSpec(
    "serving_default",
    "tensorflow/serving/predict",
    {"x": X, "s": S},
    {"y": TensorSpec("y", "DT_FLOAT", (-1,)), "z": TensorSpec("z", "DT_INT64", None)},
)


def _inputs(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"x": np.zeros((2, 3), np.float32), "s": np.array([b"a", b"b"])}
    base.update(overrides)
    return base


def test_matching_inputs_pass_unchanged() -> None:
    given_inputs = _inputs()
    checked = check_inputs(given_inputs, SIG, MODEL, cast=False)
    assert checked["x"] is given_inputs["x"]


def test_wrong_names_list_what_the_signature_expects() -> None:
    with pytest.raises(InvalidInputError) as raised:
        check_inputs({"x": np.zeros((1, 3), np.float32), "t": [b"a"]}, SIG, MODEL, cast=False)
    message = str(raised.value)
    assert "extra ['t']" in message
    assert "missing ['s']" in message
    assert "x: DT_FLOAT shape [-1, 3]" in message
    assert raised.value.model == MODEL


def test_wrong_dtype_names_input_and_expected_dtype() -> None:
    with pytest.raises(InvalidInputError) as raised:
        check_inputs(_inputs(x=np.zeros((2, 3), np.float64)), SIG, MODEL, cast=False)
    assert raised.value.input_name == "x"
    assert "DT_FLOAT" in str(raised.value)
    assert "cast=True" in str(raised.value)


def test_cast_converts_float64_to_float32() -> None:
    checked = check_inputs(_inputs(x=np.ones((2, 3))), SIG, MODEL, cast=True)
    assert checked["x"].dtype == np.float32


def test_cast_refuses_unsafe_kinds() -> None:
    with pytest.raises(InvalidInputError, match="'x' is <U1"):
        check_inputs(_inputs(x=np.full((2, 3), "a")), SIG, MODEL, cast=True)
    with pytest.raises(InvalidInputError, match="'s' is float64"):
        check_inputs(_inputs(s=np.zeros(2)), SIG, MODEL, cast=True)


@pytest.mark.parametrize(
    "value",
    [np.zeros((2,), np.float32), np.zeros((2, 4), np.float32), np.zeros((1, 2, 3), np.float32)],
    ids=["rank1", "fixed_dim", "rank3"],
)
def test_wrong_rank_or_fixed_dimension_is_rejected(value: Any) -> None:
    with pytest.raises(InvalidInputError, match=r"expects \[-1, 3\]") as raised:
        check_inputs(_inputs(x=value), SIG, MODEL, cast=False)
    assert raised.value.input_name == "x"


def test_strings_accept_bytes_str_and_objects() -> None:
    for value in (np.array(["a", "b"]), np.array([b"a", b"b"]), np.array(["a", b"b"], object)):
        check_inputs(_inputs(s=value), SIG, MODEL, cast=False)


def _arrays_within_float32(dtype: Any) -> st.SearchStrategy[np.ndarray[Any, Any]]:
    elements = {"min_value": -1e30, "max_value": 1e30} if dtype == np.float64 else None
    return hnp.arrays(dtype, (2, 3), elements=elements)


@given(
    arr=st.sampled_from([np.float64, np.float16, np.int32, np.int64, np.uint8]).flatmap(
        _arrays_within_float32
    )
)
def test_cast_follows_numpy_same_kind_rules(arr: np.ndarray[Any, Any]) -> None:
    checked = check_inputs(_inputs(x=arr), SIG, MODEL, cast=True)
    assert checked["x"].dtype == np.float32
    np.testing.assert_array_equal(checked["x"], arr.astype(np.float32))


def test_cast_refuses_values_that_overflow() -> None:
    with pytest.raises(InvalidInputError, match="do not fit DT_FLOAT"):
        check_inputs(_inputs(x=np.full((2, 3), 1e300)), SIG, MODEL, cast=True)
    small = TensorSpec("x", "DT_INT32", (-1,), numpy_dtype=np.dtype("int32"))
    sig = SignatureSpec("serving_default", "p", {"x": small}, {})
    assert check_inputs({"x": np.array([1, 2])}, sig, MODEL, cast=True)["x"].dtype == np.int32
    with pytest.raises(InvalidInputError, match="do not fit DT_INT32"):
        check_inputs({"x": np.array([2**40])}, sig, MODEL, cast=True)


def test_single_input_needs_a_single_input_signature() -> None:
    single = SignatureSpec("serving_default", "p", {"x": X}, {})
    assert list(name_single_input(np.zeros(3), single, MODEL)) == ["x"]
    with pytest.raises(InvalidInputError, match="has 2 inputs"):
        name_single_input(np.zeros(3), SIG, MODEL)


def test_output_filter_uses_tf_servings_wording() -> None:
    check_output_filter(["y"], SIG, MODEL)
    with pytest.raises(InvalidArgumentError, match="output tensor alias not found in signature: w"):
        check_output_filter(["w"], SIG, MODEL)
    with pytest.raises(InvalidArgumentError, match="duplicate output tensor alias: y"):
        check_output_filter(["y", "y"], SIG, MODEL)
