"""JSON text the way TF Serving's REST layer writes it (RapidJSON writer + absl).

* :func:`format_float` is ``WriteDecimal`` of util/json_tensor.cc: ``%g`` (six
  significant digits, absl ``StrCat``), the round-trip fallback ``%.9g`` (float) or
  ``%.17g`` (double), ``.0`` appended when the text has neither ``.`` nor ``e``, and
  the bare tokens ``NaN`` / ``Infinity`` / ``-Infinity``. :func:`float_tokens` gives
  the same texts for a whole array, deciding each one's form with numpy.
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
import operator
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, cast

import numpy as np

__all__ = [
    "CHUNK",
    "JsonTokens",
    "debug_string",
    "float_tokens",
    "format_float",
    "format_floats",
    "json_string",
    "quote",
]

_MAX_DEBUG_BYTES = 256
CHUNK = 1 << 16
"""Elements per slice in vectorized work over big arrays."""


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
    """:func:`format_float` over a float32 or float64 array (see :func:`float_tokens`)."""
    return float_tokens(values).texts()


@dataclass(frozen=True)
class JsonTokens:
    """The JSON texts of a flat array's elements, as ``%``-format specs over values.

    Element ``i`` is written ``specs[kinds[i]] % args[i]``, or just ``specs[kinds[i]]``
    when ``args`` is None. Kept in this form so a caller can lay out millions of
    elements with a few ``str.__mod__`` calls over big templates.
    """

    specs: tuple[str, ...]
    kinds: np.ndarray[Any, np.dtype[np.intp]]
    args: Sequence[Any] | np.ndarray[Any, Any] | None

    def arguments(self, start: int, stop: int) -> tuple[Any, ...]:
        """The values of elements ``start:stop``, as ``%`` takes them."""
        if self.args is None:
            raise TypeError("these tokens are literal texts: they take no arguments")
        part = self.args[start:stop]
        return tuple(part.tolist() if isinstance(part, np.ndarray) else part)

    def texts(self) -> list[str]:
        """Each element's text, in order."""
        specs = np.array(self.specs, dtype=object)[self.kinds].tolist()
        if self.args is None:
            return cast("list[str]", specs)
        return list(map(operator.mod, specs, self.arguments(0, len(specs))))


# Kinds of float text, as indexes into the spec tables below.
_SHORT, _SHORT_WHOLE, _LONG, _LONG_WHOLE, _NAN, _POS_INF, _NEG_INF = range(7)
# "%.0s" consumes the value and prints nothing, so every element takes one argument.
_NON_FINITE_SPECS = ("%.0sNaN", "%.0sInfinity", "%.0s-Infinity")
_FLOAT32_SPECS = ("%g", "%g.0", "%.9g", "%.9g.0", *_NON_FINITE_SPECS)
_DOUBLE_SPECS = ("%g", "%g.0", "%.17g", "%.17g.0", *_NON_FINITE_SPECS)
# Exact powers of ten as doubles: one multiplication or division by one of them is
# correctly rounded, as a float() of the decimal text is.
_EXACT_POW10 = np.array([float(10**k) for k in range(23)])
_MAX_EXACT_POW10 = len(_EXACT_POW10) - 1


def float_tokens(values: np.ndarray[Any, Any]) -> JsonTokens:
    """:func:`format_float` for every element of a float32 or float64 array, vectorised.

    Which of ``%g`` and the round-trip precision each element needs, and whether it
    gets ``.0``, is decided with numpy (:func:`_float_kinds`); only the formatting
    itself is per element, at C speed.

    >>> float_tokens(np.array([0.5, 7.0, 1 / 3, np.nan], dtype=np.float32)).texts()
    ['0.5', '7.0', '0.333333343', 'NaN']
    """
    double = values.dtype == np.float64
    flat = values.reshape(-1).astype(np.float64)
    kinds = np.empty(flat.size, dtype=np.intp)
    # In slices: numpy's temporaries then stay in cache and are not fresh pages.
    for start in range(0, flat.size, CHUNK):
        chunk = slice(start, start + CHUNK)
        kinds[chunk] = _float_kinds(flat[chunk], double=double)
    return JsonTokens(specs=_DOUBLE_SPECS if double else _FLOAT32_SPECS, kinds=kinds, args=flat)


def _float_kinds(
    flat: np.ndarray[Any, np.dtype[np.float64]], *, double: bool
) -> np.ndarray[Any, np.dtype[np.intp]]:
    # Out-of-range scalings are expected (and not trusted; see below): no warnings.
    with np.errstate(all="ignore"):
        finite = np.isfinite(flat)
        magnitude = np.abs(flat)
        short = _six_digits_round_trip(flat, magnitude, finite, double=double)
        # Without "." or "e" exactly for whole numbers below 10**precision: the six-digit
        # text of a non-whole value never round-trips as a whole one, and a non-whole
        # float32 (double) has a fraction that survives 9 (17) significant digits.
        whole = finite & (flat == np.trunc(flat))
        whole &= magnitude < np.where(short, 1e6, 1e17 if double else 1e9)
    kinds: np.ndarray[Any, np.dtype[np.intp]] = np.where(short, _SHORT, _LONG) + whole
    kinds[np.isnan(flat)] = _NAN
    kinds[flat == np.inf] = _POS_INF
    kinds[flat == -np.inf] = _NEG_INF
    return kinds


def _six_digits_round_trip(
    flat: np.ndarray[Any, np.dtype[np.float64]],
    magnitude: np.ndarray[Any, np.dtype[np.float64]],
    finite: np.ndarray[Any, np.dtype[np.bool_]],
    *,
    double: bool,
) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Whether ``%g`` (six significant digits) reads back to each value.

    The six digits are ``rint(|v| * 10**s)`` for the ``s`` that puts that product in
    [1e5, 1e6); with ``|s| <= 22`` the power of ten is exact, so the product is off by
    at most half an ulp and ``rint`` gives printf's digits unless the product is
    within a hair of a tie, and the text's value ``digits / 10**s`` is exactly the
    double a parse of the text gives. Ties, very large or small magnitudes (and
    anything else this cannot vouch for) are formatted and parsed back instead.
    """
    nonzero = finite & (magnitude > 0.0)
    safe = np.where(nonzero, magnitude, 1.0)
    scale = (5.0 - np.floor(np.log10(safe))).astype(np.int64)
    first = _scaled(safe, scale)
    # log10 may land one off next to a power of ten.
    scale -= first >= 1e6
    scale += first < 1e5
    product = _scaled(safe, scale)
    digits = np.rint(product)
    sure = nonzero & (np.abs(scale) <= _MAX_EXACT_POW10)
    sure &= (product >= 1e5) & (product < 1e6)
    sure &= np.abs(product - np.floor(product) - 0.5) > 1e-6
    back = _unscaled(digits, scale)
    short: np.ndarray[Any, np.dtype[np.bool_]]
    short = back == safe if double else back.astype(np.float32) == safe.astype(np.float32)
    short &= sure
    short |= finite & (magnitude == 0.0)  # "0" and "-0" read back exactly
    unsure = np.flatnonzero(nonzero & ~sure)
    if unsure.size:
        values = flat[unsure]
        parsed = np.array([f"{v:g}" for v in values.tolist()], dtype=np.float64)
        if double:
            short[unsure] = parsed == values
        else:
            short[unsure] = parsed.astype(np.float32) == values.astype(np.float32)
    return short


def _scaled(
    magnitude: np.ndarray[Any, np.dtype[np.float64]], scale: np.ndarray[Any, np.dtype[np.int64]]
) -> np.ndarray[Any, np.dtype[np.float64]]:
    power = _EXACT_POW10[np.clip(np.abs(scale), 0, _MAX_EXACT_POW10)]
    scaled: np.ndarray[Any, np.dtype[np.float64]] = np.where(
        scale >= 0, magnitude * power, magnitude / power
    )
    return scaled


def _unscaled(
    digits: np.ndarray[Any, np.dtype[np.float64]], scale: np.ndarray[Any, np.dtype[np.int64]]
) -> np.ndarray[Any, np.dtype[np.float64]]:
    power = _EXACT_POW10[np.clip(np.abs(scale), 0, _MAX_EXACT_POW10)]
    unscaled: np.ndarray[Any, np.dtype[np.float64]] = np.where(
        scale >= 0, digits / power, digits * power
    )
    return unscaled


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
    """``value`` (as parsed by the reader) dumped the way TF Serving quotes it in errors."""
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
