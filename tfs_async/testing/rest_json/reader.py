"""JSON parsing with the semantics of RapidJSON 1.1.0 as TF Serving configures it.

TF Serving parses REST bodies with ``kParseIterativeFlag | kParseNanAndInfFlag |
kParseStopWhenDoneFlag`` (util/json_tensor.cc). So, unlike RFC 8259 parsers:

* ``NaN``, ``Inf``, ``Infinity`` (optionally signed) are numbers;
* bytes after the root value are ignored, and a NUL byte ends the input;
* nesting depth is unbounded (the parser keeps its own stack);
* integer literals stay exact up to uint64; larger ones become doubles;
* doubles are not always correctly rounded (no ``kParseFullPrecisionFlag``);
* strings are raw bytes (no UTF-8 validation).

Errors carry RapidJSON's English message and byte offset.

Values come back as ``dict`` (first occurrence order), ``list``, ``str``, ``int``,
``float``, ``bool`` and ``None``. Strings are decoded with ``surrogateescape`` so that
``s.encode("utf-8", "surrogateescape")`` gives back the exact bytes that were sent.

>>> parse_json(b'{"x": [NaN, -Infinity, 18446744073709551615]} trailing')
{'x': [nan, -inf, 18446744073709551615]}
>>> parse_json(b'[nul]')
Traceback (most recent call last):
...
tfs_async.testing.rest_json.reader.JsonSyntaxError: Invalid value. at offset: 4
"""

from __future__ import annotations

import contextlib
import gc
import re
from collections.abc import Iterator
from typing import Any

import orjson

__all__ = ["JsonSyntaxError", "may_round_differently", "parse_json"]

# RapidJSON's GetParseError_En texts.
DOCUMENT_EMPTY = "The document is empty."
VALUE_INVALID = "Invalid value."
OBJECT_MISS_NAME = "Missing a name for object member."
OBJECT_MISS_COLON = "Missing a colon after a name of object member."
OBJECT_MISS_COMMA = "Missing a comma or '}' after an object member."
ARRAY_MISS_COMMA = "Missing a comma or ']' after an array element."
STRING_INVALID_HEX = "Incorrect hex digit after \\u escape in string."
STRING_SURROGATE = "The surrogate pair in string is invalid."
STRING_ESCAPE = "Invalid escape character in string."
STRING_MISS_QUOTE = "Missing a closing quotation mark in string."
NUMBER_TOO_BIG = "Number too big to be stored in double."
NUMBER_MISS_FRACTION = "Miss fraction part in number."
NUMBER_MISS_EXPONENT = "Miss exponent in number."

_UINT64_MAX = 2**64 - 1
_INT64_MIN = -(2**63)
_DBL_MAX_DIV_10 = 1.7976931348623157e307


class JsonSyntaxError(ValueError):
    """A body RapidJSON would reject: its ``reason`` text and byte ``offset``."""

    def __init__(self, reason: str, offset: int) -> None:
        super().__init__(f"{reason} at offset: {offset}")
        self.reason = reason
        self.offset = offset


def parse_json(body: bytes, *, exact_numbers: bool = False) -> Any:
    """Parse ``body`` as TF Serving's RapidJSON would; raise :class:`JsonSyntaxError`.

    Standard JSON goes through orjson, whose doubles are correctly rounded; RapidJSON's
    can differ in the last bit for literals with more than 15 significant digits or
    an exponent. ``exact_numbers=True`` reproduces RapidJSON's doubles for those too
    (slower: such bodies skip orjson).
    """
    with _collector_paused():
        if not (exact_numbers and may_round_differently(body)):
            try:
                # orjson accepts a strict subset of what RapidJSON accepts here (no NaN, no
                # trailing bytes, depth <= 1024) and gives the same values for it.
                return orjson.loads(body)
            except orjson.JSONDecodeError:
                pass
        return _Parser(body).parse()


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Hold off the cyclic garbage collector while a document is built.

    A big tensor is millions of new lists; each batch of them would trigger a
    collection that walks every object alive (3x the parse time for a 100 MB body).
    A parsed document holds no reference cycles, so nothing is left for it to find.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


# 16+ digits (a run of 17 digits and dots), or an exponent: literals on which
# RapidJSON's double may not be the correctly rounded one. Strings may match too.
_INEXACT_LITERAL = re.compile(rb"[0-9.]{17}|[0-9.][eE][+-]?[0-9]")


def may_round_differently(body: bytes) -> bool:
    """Whether ``body`` may hold a number RapidJSON reads to a different double than orjson."""
    return _INEXACT_LITERAL.search(body) is not None


# Parser states, named after RapidJSON's IterativeParsingState.
_START, _FINISH = 0, 1
_OBJECT_INITIAL, _MEMBER_KEY, _KEY_VALUE_DELIMITER, _MEMBER_VALUE, _MEMBER_DELIMITER = 2, 3, 4, 5, 6
_ARRAY_INITIAL, _ELEMENT, _ELEMENT_DELIMITER = 7, 8, 9

_WS = re.compile(rb"[ \t\n\r]*")
_PLAIN_STRING = re.compile(rb'[^"\\\x00-\x1f]*')
_DIGITS = re.compile(rb"[0-9]*")
# Up to 18 integer digits (always int64) or 15 significant digits with a fraction
# (then one exact division, so RapidJSON's double is the correctly rounded one).
_SIMPLE_NUMBER = re.compile(rb"-?(?:0|[1-9][0-9]{0,17})(?:\.([0-9]{1,15}))?")
_ESCAPES = {
    ord('"'): b'"',
    ord("\\"): b"\\",
    ord("/"): b"/",
    ord("b"): b"\b",
    ord("f"): b"\f",
    ord("n"): b"\n",
    ord("r"): b"\r",
    ord("t"): b"\t",
}
# States that expect a value, and the state that follows the value.
_VALUE_EXPECTED = {
    _START: _FINISH,
    _KEY_VALUE_DELIMITER: _MEMBER_VALUE,
    _ARRAY_INITIAL: _ELEMENT,
    _ELEMENT_DELIMITER: _ELEMENT,
}
_HEX = frozenset(b"0123456789abcdefABCDEF")
_STRUCTURAL = frozenset(b"[]{},:")


class _Parser:
    """RapidJSON's iterative parser (reader.h ``IterativeParse``), same states and errors."""

    def __init__(self, body: bytes) -> None:
        # RapidJSON's MemoryStream reads '\0' at the end; a NUL in the body acts the same.
        self.buf = body + b"\0"
        self.end = len(body)

    def parse(self) -> Any:  # noqa: C901 -- one branch per JSON token, as RapidJSON reads them
        buf = self.buf
        pos = _WS.match(buf, 0).end()  # type: ignore[union-attr]
        state = _START
        root: Any = None
        # Open containers, each with the state to resume once it is closed.
        stack: list[tuple[Any, int]] = []
        # Member name being filled, one per open object.
        keys: list[str] = []
        while buf[pos] != 0 and state != _FINISH:
            c = buf[pos]
            close = False
            if state in _VALUE_EXPECTED:
                resume = _VALUE_EXPECTED[state]
                if c == 0x5B or c == 0x7B:  # '[' or '{'
                    container: Any = [] if c == 0x5B else {}
                    if stack:
                        _add(stack[-1][0], keys, container)
                    stack.append((container, resume))
                    if c == 0x7B:
                        keys.append("")
                    state = _ARRAY_INITIAL if c == 0x5B else _OBJECT_INITIAL
                    pos += 1
                elif c == 0x5D and state == _ARRAY_INITIAL:  # ']' of an empty array
                    close = True
                elif c in _STRUCTURAL:
                    raise JsonSyntaxError(DOCUMENT_EMPTY if state == _START else VALUE_INVALID, pos)
                else:
                    value, pos = self._value(pos)
                    if stack:
                        _add(stack[-1][0], keys, value)
                    else:
                        root = value
                    state = resume
            elif state in (_OBJECT_INITIAL, _MEMBER_DELIMITER):
                if c == 0x22:  # '"'
                    keys[-1], pos = self._string(pos)
                    state = _MEMBER_KEY
                elif c == 0x7D and state == _OBJECT_INITIAL:  # '}' of an empty object
                    close = True
                else:
                    raise JsonSyntaxError(OBJECT_MISS_NAME, pos)
            elif state == _MEMBER_KEY:
                if c != 0x3A:  # ':'
                    raise JsonSyntaxError(OBJECT_MISS_COLON, pos)
                state = _KEY_VALUE_DELIMITER
                pos += 1
            elif state == _MEMBER_VALUE:
                if c == 0x2C:  # ','
                    state = _MEMBER_DELIMITER
                    pos += 1
                elif c == 0x7D:
                    close = True
                else:
                    raise JsonSyntaxError(OBJECT_MISS_COMMA, pos)
            else:  # _ELEMENT
                if c == 0x2C:
                    state = _ELEMENT_DELIMITER
                    pos += 1
                elif c == 0x5D:
                    close = True
                else:
                    raise JsonSyntaxError(ARRAY_MISS_COMMA, pos)
            if close:
                container, state = stack.pop()
                if isinstance(container, dict):
                    keys.pop()
                if not stack:
                    root = container
                pos += 1
            pos = _WS.match(buf, pos).end()  # type: ignore[union-attr]
        if state != _FINISH:
            raise JsonSyntaxError(_END_ERRORS[state], pos)
        return root

    def _value(self, pos: int) -> tuple[Any, int]:
        buf = self.buf
        c = buf[pos]
        if c == 0x22:
            return self._string(pos)
        literal = {0x6E: (b"null", None), 0x74: (b"true", True), 0x66: (b"false", False)}.get(c)
        if literal is not None:
            word, value = literal
            for i in range(1, len(word)):
                if buf[pos + i] != word[i]:
                    raise JsonSyntaxError(VALUE_INVALID, pos + i)
            return value, pos + len(word)
        return self._number(pos)

    def _string(self, pos: int) -> tuple[str, int]:
        buf = self.buf
        pos += 1
        m = _PLAIN_STRING.match(buf, pos)
        assert m is not None
        if buf[m.end()] == 0x22:
            return buf[pos : m.end()].decode("utf-8", "surrogateescape"), m.end() + 1
        out = bytearray()
        while True:
            m = _PLAIN_STRING.match(buf, pos)
            assert m is not None
            out += buf[pos : m.end()]
            pos = m.end()
            c = buf[pos]
            if c == 0x22:
                return out.decode("utf-8", "surrogateescape"), pos + 1
            if c == 0x5C:  # backslash
                escape_offset = pos
                e = buf[pos + 1]
                if e in _ESCAPES:
                    out += _ESCAPES[e]
                    pos += 2
                elif e == 0x75:  # 'u'
                    code, pos = self._hex4(pos + 2, escape_offset)
                    if 0xD800 <= code <= 0xDBFF:
                        if buf[pos] != 0x5C or buf[pos + 1] != 0x75:
                            raise JsonSyntaxError(STRING_SURROGATE, escape_offset)
                        low, pos = self._hex4(pos + 2, escape_offset)
                        if not 0xDC00 <= low <= 0xDFFF:
                            raise JsonSyntaxError(STRING_SURROGATE, escape_offset)
                        code = (((code - 0xD800) << 10) | (low - 0xDC00)) + 0x10000
                    # RapidJSON encodes a lone low surrogate as its 3 UTF-8 bytes.
                    out += chr(code).encode("utf-8", "surrogatepass")
                else:
                    raise JsonSyntaxError(STRING_ESCAPE, escape_offset)
            elif c == 0:
                raise JsonSyntaxError(STRING_MISS_QUOTE, pos)
            else:  # another control character
                raise JsonSyntaxError(STRING_ESCAPE, pos)

    def _hex4(self, pos: int, escape_offset: int) -> tuple[int, int]:
        digits = self.buf[pos : pos + 4]
        if len(digits) < 4 or any(d not in _HEX for d in digits):
            raise JsonSyntaxError(STRING_INVALID_HEX, escape_offset)
        return int(digits, 16), pos + 4

    def _number(self, pos: int) -> tuple[Any, int]:
        buf = self.buf
        m = _SIMPLE_NUMBER.match(buf, pos)
        if m is not None and buf[m.end()] not in b".eE0123456789":
            text = m.group()
            if m.group(1) is None:
                return int(text), m.end()
            if len(text) - 1 - (text[0] == 0x2D) <= 15:
                return float(text), m.end()
        return _number_exact(buf, pos)


def _add(container: Any, keys: list[str], value: Any) -> None:
    if isinstance(container, list):
        container.append(value)
    elif keys[-1] not in container:
        # RapidJSON keeps duplicate members and FindMember() returns the first.
        container[keys[-1]] = value


def _number_exact(buf: bytes, start: int) -> tuple[Any, int]:  # noqa: C901 -- RapidJSON ParseNumber
    """RapidJSON's ParseNumber, with its limits and error offsets."""
    pos = start
    minus = buf[pos] == 0x2D
    if minus:
        pos += 1
    special: float | None = None
    c = buf[pos]
    if c == 0x30:
        int_digits = b"0"
        pos += 1
    elif 0x31 <= c <= 0x39:
        end = _DIGITS.match(buf, pos).end()  # type: ignore[union-attr]
        int_digits = buf[pos:end]
        pos = end
    elif c in (0x49, 0x4E):  # 'I' or 'N'
        int_digits = b"0"
        if buf.startswith(b"NaN", pos):
            special = float("nan")
            pos += 3
        elif buf.startswith(b"Inf", pos):
            special = float("-inf") if minus else float("inf")
            pos += 3
            if buf[pos] == 0x69:  # 'i': must complete "Infinity"
                for i, ch in enumerate(b"inity"):
                    if buf[pos + i] != ch:
                        raise JsonSyntaxError(VALUE_INVALID, pos + i)
                pos += 5
        else:
            i = 0
            word = b"NaN" if c == 0x4E else b"Inf"
            while buf[pos + i] == word[i]:
                i += 1
            raise JsonSyntaxError(VALUE_INVALID, pos + i)
    else:
        raise JsonSyntaxError(VALUE_INVALID, pos)

    frac_digits = b""
    if buf[pos] == 0x2E:  # '.'
        pos += 1
        if not 0x30 <= buf[pos] <= 0x39:
            raise JsonSyntaxError(NUMBER_MISS_FRACTION, pos)
        end = _DIGITS.match(buf, pos).end()  # type: ignore[union-attr]
        frac_digits = buf[pos:end]
        pos = end
    exp_digits: bytes | None = None
    exp_minus = False
    if buf[pos] in (0x65, 0x45):  # 'e' or 'E'
        pos += 1
        if buf[pos] in (0x2B, 0x2D):
            exp_minus = buf[pos] == 0x2D
            pos += 1
        if not 0x30 <= buf[pos] <= 0x39:
            raise JsonSyntaxError(NUMBER_MISS_EXPONENT, pos)
        end = _DIGITS.match(buf, pos).end()  # type: ignore[union-attr]
        exp_digits = buf[pos:end]
        pos = end
    value = _strtod(int_digits, frac_digits, exp_digits, exp_minus, minus)
    if value is None:
        raise JsonSyntaxError(NUMBER_TOO_BIG, start)
    if isinstance(value, int) and special is not None:
        return special, pos
    return value, pos


def _strtod(  # noqa: C901 -- RapidJSON StrtodFullPrecision, step for step
    int_digits: bytes, frac_digits: bytes, exp_digits: bytes | None, exp_minus: bool, minus: bool
) -> int | float | None:
    """The value RapidJSON 1.1.0 gives a number literal (ParseNumber without
    kParseFullPrecisionFlag), or None where it reports "Number too big".

    Integers stay exact within int64/uint64; anything else is RapidJSON's double,
    which is not always the correctly rounded one (it keeps at most 17 significant
    digits and scales with one multiplication or division by a power of ten).
    """
    limit = 2**63 if minus else _UINT64_MAX
    value = 0
    significant = 0
    use_double = False
    d = 0.0
    index = 0
    for index, ch in enumerate(int_digits):
        following = value * 10 + (ch - 0x30)
        if following > limit:
            use_double = True
            break
        value = following
        if index > 0:
            significant += 1
    if use_double:
        d = float(value)
        for ch in int_digits[index:]:
            if d >= _DBL_MAX_DIV_10:
                return None
            d = d * 10 + (ch - 0x30)
    exp_frac = 0
    if frac_digits:
        rest = frac_digits
        if not use_double:
            i64 = value
            taken = 0
            for ch in frac_digits:
                if i64 > _MAX_SAFE_INTEGER:
                    break
                i64 = i64 * 10 + (ch - 0x30)
                exp_frac -= 1
                taken += 1
                if i64 != 0:
                    significant += 1
            d = float(i64)
            use_double = True
            rest = frac_digits[taken:]
        for ch in rest:
            if significant < 17:
                d = d * 10.0 + (ch - 0x30)
                exp_frac -= 1
                if d > 0.0:
                    significant += 1
    exp = 0
    if exp_digits is not None:
        if not use_double:
            d = float(value)
            use_double = True
        if exp_minus:
            exp = -min(int(exp_digits), 2**31 - 1)
        elif int(exp_digits) > 308 - exp_frac:
            return None
        else:
            exp = int(exp_digits)
    if not use_double:
        return -value if minus else value
    d = _strtod_normal_precision(d, exp + exp_frac)
    return -d if minus else d


_POW10 = tuple(float(f"1e{n}") for n in range(309))
_MAX_SAFE_INTEGER = 2**53 - 1


def _fast_path(significand: float, exp: int) -> float:
    if exp < -308:
        return 0.0
    if exp >= 0:
        return significand * _POW10[exp]
    return significand / _POW10[-exp]


def _strtod_normal_precision(d: float, p: int) -> float:
    if p < -308:
        # Two steps so the power of ten does not underflow to zero.
        return _fast_path(_fast_path(d, -308), p + 308)
    return _fast_path(d, p)


# What RapidJSON reports when the input ends (or hits NUL) in each state.
_END_ERRORS = {
    _START: DOCUMENT_EMPTY,
    _OBJECT_INITIAL: OBJECT_MISS_NAME,
    _MEMBER_DELIMITER: OBJECT_MISS_NAME,
    _MEMBER_KEY: OBJECT_MISS_COLON,
    _MEMBER_VALUE: OBJECT_MISS_COMMA,
    _KEY_VALUE_DELIMITER: VALUE_INVALID,
    _ARRAY_INITIAL: VALUE_INVALID,
    _ELEMENT_DELIMITER: VALUE_INVALID,
    _ELEMENT: ARRAY_MISS_COMMA,
}
