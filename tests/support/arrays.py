"""Array comparison for codec tests: same dtype, shape and values (NaN equal to NaN)."""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np
import numpy.typing as npt

# Every numeric dtype the tensor codec carries, plus strings.
NUMERIC_DTYPES: list[np.dtype[Any]] = [
    np.dtype(t)
    for t in (
        np.float32,
        np.float64,
        np.float16,
        ml_dtypes.bfloat16,
        np.int8,
        np.int16,
        np.int32,
        np.int64,
        np.uint8,
        np.uint16,
        np.uint32,
        np.uint64,
        np.bool_,
        np.complex64,
        np.complex128,
    )
]


def assert_same_array(got: npt.NDArray[Any], want: npt.NDArray[Any]) -> None:
    """``got`` equals ``want`` in dtype (native order), shape and values."""
    want_dtype = want.dtype if want.dtype.kind in "OSU" else want.dtype.newbyteorder("=")
    if want.dtype.kind in "SU":
        want_dtype = np.dtype(object)
    assert got.dtype == want_dtype, (got.dtype, want.dtype)
    assert got.shape == want.shape, (got.shape, want.shape)
    if want.dtype.kind in "UO":
        encode = np.vectorize(
            lambda s: s.encode("utf-8") if isinstance(s, str) else s, otypes=[object]
        )
        want = encode(want) if want.size else want.astype(object)
    if want.dtype == np.dtype(ml_dtypes.bfloat16) or want.dtype.kind == "f":
        assert np.array_equal(got.astype(np.float64), want.astype(np.float64), equal_nan=True), (
            got,
            want,
        )
    elif want.dtype.kind == "c":
        assert np.array_equal(got, want, equal_nan=True), (got, want)
    else:
        assert got.tolist() == want.tolist(), (got, want)
