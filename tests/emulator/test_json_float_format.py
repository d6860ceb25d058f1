"""Properties of TF Serving's float text (WriteDecimal in util/rest_json.cc)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from tfs_async.testing.rest_json.writer import format_float, format_floats

float32s = st.floats(width=32, allow_nan=True, allow_infinity=True)
doubles = st.floats(allow_nan=True, allow_infinity=True)


def _significant_digits(text: str) -> int:
    mantissa = text.lstrip("-").split("e")[0].replace(".", "").lstrip("0")
    return len(mantissa.rstrip("0")) or 1


def test_tf_serving_six_digit_examples() -> None:
    values = np.array([9e6, 999999.0, 0.5, 0.0003, 3e-05, 555557.5], dtype=np.float32)
    expected = ["9e+06", "999999.0", "0.5", "0.0003", "3e-05", "555557.5"]
    assert format_floats(values) == expected
    assert [format_float(float(v), double=False) for v in values] == expected


def test_non_finite_tokens_and_signed_zero() -> None:
    values = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0], dtype=np.float32)
    assert format_floats(values) == ["NaN", "Infinity", "-Infinity", "-0.0", "0.0"]


def test_values_needing_more_digits() -> None:
    # The float32 nearest 0.1 reads back from "0.1", so six digits suffice.
    assert format_float(float(np.float32(0.1)), double=False) == "0.1"
    # 16777217 is not a float32; 16777216 prints with 9 digits to round-trip.
    assert format_float(16777216.0, double=False) == "16777216.0"
    assert format_float(0.1, double=True) == "0.1"
    assert format_float(1 / 3, double=True) == "0.33333333333333331"


@given(float32s)
def test_float32_round_trips(value: float) -> None:
    text = format_float(value, double=False)
    if math.isnan(value):
        assert text == "NaN"
        return
    if math.isinf(value):
        assert text == ("Infinity" if value > 0 else "-Infinity")
        return
    assert np.float32(float(text)) == np.float32(value)
    assert "." in text or "e" in text
    # Six significant digits whenever they suffice, otherwise %.9g.
    six = f"{value:g}"
    if np.float32(float(six)) == np.float32(value):
        assert text in (six, six + ".0")
        assert _significant_digits(text) <= 6
    else:
        assert text.removesuffix(".0") == f"{value:.9g}"


@given(doubles)
def test_double_round_trips(value: float) -> None:
    text = format_float(value, double=True)
    if not math.isfinite(value):
        assert text in ("NaN", "Infinity", "-Infinity")
        return
    assert float(text) == value
    assert "." in text or "e" in text
    six = f"{value:g}"
    expected = six if float(six) == value else f"{value:.17g}"
    assert text.removesuffix(".0") == expected


@given(st.lists(float32s, max_size=50))
def test_vectorised_float32_matches_scalar(values: list[float]) -> None:
    array = np.array(values, dtype=np.float32)
    assert format_floats(array) == [format_float(float(v), double=False) for v in array]


@given(st.lists(doubles, max_size=50))
def test_vectorised_double_matches_scalar(values: list[float]) -> None:
    array = np.array(values, dtype=np.float64)
    assert format_floats(array) == [format_float(v, double=True) for v in values]
