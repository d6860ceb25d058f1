"""JSON text the way TF Serving's REST layer writes it (RapidJSON writer + absl).

* :func:`format_float` is ``WriteDecimal`` of util/json_tensor.cc: ``%g`` (six
  significant digits, absl ``StrCat``), the round-trip fallback ``%.9g`` (float) or
  ``%.17g`` (double), ``.0`` appended when the text has neither ``.`` nor ``e``, and
  the bare tokens ``NaN`` / ``Infinity`` / ``-Infinity``.
* :func:`json_string` escapes like RapidJSON's ``Writer::String``: only ``"``, ``\\``
  and control characters; other bytes (valid UTF-8 or not) pass through.
* :func:`debug_string` is ``JsonValueToDebugString``: a PrettyWriter dump with
  single-line arrays, cut once 256 bytes are written, doubles in RapidJSON's Grisu2
  digits; used inside error messages.

>>> [format_float(v, double=False) for v in (9e6, 999999.0, 0.5, 3e-05, float("nan"))]
['9e+06', '999999.0', '0.5', '3e-05', 'NaN']
>>> json_string(b'say "hi"\\n')
b'"say \\\\"hi\\\\"\\\\n"'
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from fractions import Fraction
from typing import Any

import numpy as np

__all__ = ["debug_string", "format_float", "format_floats", "json_string", "quote"]

_MAX_DEBUG_BYTES = 256


def _finish(text: str) -> str:
    # Whole numbers keep a ".0" so readers infer a floating type.
    if "." not in text and "e" not in text:
        return text + ".0"
    return text


def format_float(value: float, *, double: bool) -> str:
    """One float32 (``double=False``) or float64 value as TF Serving writes it."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "-Infinity" if value < 0 else "Infinity"
    text = f"{value:g}"
    if double:
        if float(text) != value:
            text = f"{value:.17g}"
    elif np.float32(float(text)) != np.float32(value):
        text = f"{value:.9g}"
    return _finish(text)


def format_floats(values: np.ndarray[Any, Any]) -> list[str]:
    """:func:`format_float` over a float32 or float64 array, vectorised where it can be."""
    double = values.dtype == np.float64
    as_python: list[float] = values.astype(np.float64).tolist()
    texts = [
        f"{v:g}" if v - v == 0.0 else format_float(v, double=double)  # v - v == 0: finite
        for v in as_python
    ]
    if not texts:
        return texts
    finite = np.isfinite(values)
    flags: list[bool] = finite.tolist()
    back = np.array([t if f else "0" for t, f in zip(texts, flags, strict=True)], dtype=np.float64)
    if double:
        mismatch = back != values
    else:
        with np.errstate(over="ignore"):
            mismatch = back.astype(np.float32) != values
    mismatch &= finite
    precision = ".17g" if double else ".9g"
    for i in np.flatnonzero(mismatch).tolist():
        texts[i] = format(as_python[i], precision)
    return [_finish(t) if f else t for t, f in zip(texts, flags, strict=True)]


_ESCAPE_RE = re.compile(r'[\x00-\x1f"\\]')
_SHORT_ESCAPES = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _escape_char(m: re.Match[str]) -> str:
    c = m.group()
    if c in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[c]
    if c in '"\\':
        return "\\" + c
    return f"\\u{ord(c):04X}"


def quote(text: str) -> str:
    r"""``text`` as a quoted JSON string, escaped like RapidJSON's writer.

    Characters from ``surrogateescape`` decoding stay as they are, so encoding the
    result the same way gives back the original bytes.

    >>> print(quote('tab\there "q" \x01'))
    "tab\there \"q\" \u0001"
    """
    return '"' + _ESCAPE_RE.sub(_escape_char, text) + '"'


def json_string(raw: bytes) -> bytes:
    """``raw`` bytes as a quoted JSON string (see :func:`quote`); no UTF-8 check."""
    text = quote(raw.decode("utf-8", "surrogateescape"))
    return text.encode("utf-8", "surrogateescape")


_MASK64 = (1 << 64) - 1


def _cached_power(k: int) -> tuple[int, int]:
    """10**k as a normalized 64-bit significand and binary exponent (rounded to nearest)."""
    value = Fraction(10) ** k
    e = value.numerator.bit_length() - value.denominator.bit_length() - 64
    while value / Fraction(2) ** e >= 2**64:
        e += 1
    while value / Fraction(2) ** e < 2**63:
        e -= 1
    return round(value / Fraction(2) ** e), e


# Grisu's table of cached powers: 10**(-348 + 8 * i).
_CACHED_POWERS = tuple(_cached_power(-348 + 8 * i) for i in range(87))


def _multiply(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    """DiyFp product: upper 64 bits of the 128-bit product, rounded half up."""
    product = a[0] * b[0]
    return (product >> 64) + ((product >> 63) & 1), a[1] + b[1] + 64


def _normalize(f: int, e: int, bits: int = 64) -> tuple[int, int]:
    shift = bits - f.bit_length()
    return f << shift, e - shift


def _grisu2(value: float) -> tuple[str, int]:
    """Shortest-ish digits and decimal exponent of a positive double, as Grisu2 gives them.

    RapidJSON's ``Writer::Double`` uses Grisu2 (Loitsch, 2010), whose digits are not
    always the shortest or closest ones; matching it keeps error texts identical.
    """
    mantissa, exponent = math.frexp(value)
    f = int(mantissa * 2**53)
    e = exponent - 53
    if e < -1074:  # subnormal: DiyFp keeps the raw significand with the minimum exponent
        f >>= -1074 - e
        e = -1074
    # Boundaries m+ and m- (the midpoints to the neighbouring doubles), normalized.
    plus = _normalize((f << 1) + 1, e - 1)
    if f == 1 << 52:
        minus_f, minus_e = (f << 2) - 1, e - 2
    else:
        minus_f, minus_e = (f << 1) - 1, e - 1
    minus = (minus_f << (minus_e - plus[1]), plus[1])
    # Cached power bringing the exponent into Grisu's window.
    dk = (-61 - plus[1]) * 0.30102999566398114 + 347
    k = int(dk)
    if dk - k > 0.0:
        k += 1
    index = (k >> 3) + 1
    decimal_k = -(-348 + index * 8)
    c_mk = _CACHED_POWERS[index]
    w = _multiply(_normalize(f, e), c_mk)
    w_plus = _multiply(plus, c_mk)
    w_minus = _multiply(minus, c_mk)
    low, high = w_minus[0] + 1, w_plus[0] - 1
    return _digit_gen(w[0], high, w_plus[1], high - low, decimal_k)


def _digit_gen(w: int, high: int, e: int, delta: int, k: int) -> tuple[str, int]:
    one_shift = -e
    one = 1 << one_shift
    wp_w = high - w
    p1 = high >> one_shift
    p2 = high & (one - 1)
    digits: list[int] = []
    kappa = len(str(p1)) if p1 else 1
    while kappa > 0:
        divisor = 10 ** (kappa - 1)
        d, p1 = divmod(p1, divisor)
        if d or digits:
            digits.append(d)
        kappa -= 1
        rest = (p1 << one_shift) + p2
        if rest <= delta:
            _round(digits, delta, rest, (10**kappa) << one_shift, wp_w)
            return "".join(map(str, digits)), k + kappa
    while True:
        p2 = (p2 * 10) & _MASK64
        delta = (delta * 10) & _MASK64
        d = p2 >> one_shift
        if d or digits:
            digits.append(d)
        p2 &= one - 1
        kappa -= 1
        if p2 < delta:
            scale = 10**-kappa if -kappa < 9 else 0
            _round(digits, delta, p2, one, (wp_w * scale) & _MASK64)
            return "".join(map(str, digits)), k + kappa


def _round(digits: list[int], delta: int, rest: int, ten_kappa: int, wp_w: int) -> None:
    """Grisu's weeding: step the last digit down while that moves closer to the value."""
    while (
        rest < wp_w
        and delta - rest >= ten_kappa
        and (rest + ten_kappa < wp_w or wp_w - rest > rest + ten_kappa - wp_w)
    ):
        digits[-1] -= 1
        rest += ten_kappa


def _rapidjson_double(value: float) -> str | None:
    """RapidJSON ``Writer::Double`` text (Grisu2 digits, its own layout).

    None for NaN/Inf, which RapidJSON's default writer refuses to write.
    """
    if not math.isfinite(value):
        return None
    if value == 0.0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign = "-" if value < 0 else ""
    digits, k = _grisu2(abs(value))
    length = len(digits)
    kk = length + k
    if k >= 0 and kk <= 21:
        text = digits + "0" * k + ".0"
    elif 0 < kk <= 21:
        text = digits[:kk] + "." + digits[kk:]
    elif -6 < kk <= 0:
        text = "0." + "0" * -kk + digits
    elif length == 1:
        text = digits + "e" + str(kk - 1)
    else:
        text = digits[0] + "." + digits[1:] + "e" + str(kk - 1)
    return sign + text


class _Limited(Exception):
    """The debug dump reached its size limit (or hit a value it cannot write)."""


class _PrettyWriter:
    """RapidJSON PrettyWriter with kFormatSingleLineArray and a byte budget."""

    def __init__(self, limit: int) -> None:
        self.out = bytearray()
        self.limit = limit
        # Per open container: [is_array, values written so far].
        self.levels: list[list[Any]] = []

    def _prefix(self) -> None:
        if not self.levels:
            return
        level = self.levels[-1]
        is_array, count = level
        if is_array:
            if count > 0:
                self.out += b", "
        else:
            if count > 0:
                self.out += b",\n" if count % 2 == 0 else b": "
            else:
                self.out += b"\n"
            if count % 2 == 0:
                self.out += b" " * (4 * len(self.levels))
        level[1] = count + 1

    def _check(self) -> None:
        if len(self.out) >= self.limit:
            raise _Limited

    def scalar(self, value: Any) -> None:
        self._check()
        self._prefix()
        if value is None:
            self.out += b"null"
        elif value is True:
            self.out += b"true"
        elif value is False:
            self.out += b"false"
        elif isinstance(value, int):
            self.out += str(value).encode()
        elif isinstance(value, float):
            text = _rapidjson_double(value)
            if text is None:
                raise _Limited
            self.out += text.encode()
        else:
            self.out += quote(str(value)).encode("utf-8", "surrogateescape")

    def start(self, is_array: bool) -> None:
        self._check()
        self._prefix()
        self.out += b"[" if is_array else b"{"
        self.levels.append([is_array, 0])

    def end(self) -> None:
        self._check()
        is_array, count = self.levels.pop()
        if not is_array and count > 0:
            self.out += b"\n" + b" " * (4 * len(self.levels))
        self.out += b"]" if is_array else b"}"


def debug_string(value: Any, limit: int = _MAX_DEBUG_BYTES) -> str:
    """``value`` (as parsed by json_reader) dumped the way TF Serving quotes it in errors."""
    writer = _PrettyWriter(limit)
    # Iterative walk: values may be nested far deeper than Python's recursion limit.
    stack: list[Iterable[Any]] = [iter((value,))]
    try:
        while stack:
            item = next(iter(stack[-1]), _DONE)
            if item is _DONE:
                stack.pop()
                if stack:
                    writer.end()
                continue
            if isinstance(item, _Key):
                writer.scalar(item.name)
            elif isinstance(item, list):
                writer.start(True)
                stack.append(iter(item))
            elif isinstance(item, dict):
                writer.start(False)
                stack.append(_members(item))
            else:
                writer.scalar(item)
    except _Limited:
        pass
    return writer.out.decode("utf-8", "replace")


_DONE = object()


class _Key:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


def _members(obj: dict[str, Any]) -> Iterable[Any]:
    for name, member in obj.items():
        yield _Key(name)
        yield member
