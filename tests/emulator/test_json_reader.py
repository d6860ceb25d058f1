"""The emulator's RapidJSON-compatible reader and debug dumps (json_reader / json_writer)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tfs_async.testing.rest_json.reader import JsonSyntaxError, _Parser, parse_json
from tfs_async.testing.rest_json.writer import debug_string

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    # Away from overflow and subnormals, where RapidJSON's scaling errs by more.
    | st.floats(min_value=-1e300, max_value=1e300).filter(lambda x: x == 0 or abs(x) > 1e-300)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


def _close(a: Any, b: Any) -> bool:
    """Equal, except that doubles may differ in the last bits (RapidJSON's rounding)."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-14, abs_tol=1e-320)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    return bool(type(a) is type(b) and a == b)


@given(json_values, st.sampled_from([None, 0, 2]))
def test_parsers_agree_with_standard_json(value: Any, indent: int | None) -> None:
    body = json.dumps(value, indent=indent).encode()
    assert parse_json(body) == json.loads(body)
    assert _close(parse_json(body, exact_numbers=True), json.loads(body))
    assert _close(_Parser(body).parse(), json.loads(body))


@given(st.integers(-(10**15) + 1, 10**15 - 1), st.integers(0, 15))
def test_short_decimals_are_correctly_rounded(digits: int, scale: int) -> None:
    text = str(abs(digits)).zfill(scale + 1)
    whole, fraction = text[: len(text) - scale], text[len(text) - scale :]
    literal = ("-" if digits < 0 else "") + whole + ("." + fraction if fraction else "")
    body = f"[{literal}]".encode()
    assert _Parser(body).parse() == parse_json(body) == json.loads(body)


@pytest.mark.parametrize(
    ("literal", "expected_hex"),
    [
        # Values RapidJSON 1.1.0 gives (checked against the library): not all are the
        # correctly rounded double.
        (b"123456789012345678901234567890", "0x1.8ee90ff6c373dp+96"),
        (b"3.4028234663852886e+38", "0x1.fffffe0000001p+127"),
        (b"0.30000000000000004", "0x1.3333333333334p-2"),
        (b"1.7976931348623157e308", "0x1.fffffffffffffp+1023"),
    ],
)
def test_rapidjson_doubles(literal: bytes, expected_hex: str) -> None:
    body = b"[" + literal + b"]"
    assert parse_json(body, exact_numbers=True) == [float.fromhex(expected_hex)]
    assert _Parser(body).parse() == [float.fromhex(expected_hex)]


@pytest.mark.parametrize(
    ("body", "reason", "offset"),
    [
        (b"   ", "The document is empty.", 3),
        (b"]", "The document is empty.", 0),
        (b"[1,", "Invalid value.", 3),
        (b"[1,]", "Invalid value.", 3),
        (b"[1 2]", "Missing a comma or ']' after an array element.", 3),
        (b"[01]", "Missing a comma or ']' after an array element.", 2),
        (b'{"a"}', "Missing a colon after a name of object member.", 4),
        (b'{"a":1,}', "Missing a name for object member.", 7),
        (b'{"a":1 "b":2}', "Missing a comma or '}' after an object member.", 7),
        (b"{1:2}", "Missing a name for object member.", 1),
        (b"[nul]", "Invalid value.", 4),
        (b"[Infinit]", "Invalid value.", 8),
        (b"[-x]", "Invalid value.", 2),
        (b"[1e400]", "Number too big to be stored in double.", 1),
        (b"[1" + b"0" * 400 + b"]", "Number too big to be stored in double.", 1),
        (b"[1.]", "Miss fraction part in number.", 3),
        (b"[1e+]", "Miss exponent in number.", 4),
        (b'["abc', "Missing a closing quotation mark in string.", 5),
        (b'["a\x01"]', "Invalid escape character in string.", 3),
        (b'["\\x"]', "Invalid escape character in string.", 2),
        (b'["\\u12G4"]', "Incorrect hex digit after \\u escape in string.", 2),
        (b'["\\ud800"]', "The surrogate pair in string is invalid.", 2),
        (b'["\\ud800\\u0041"]', "The surrogate pair in string is invalid.", 2),
        (b'{"a": \x00}', "Invalid value.", 6),
    ],
)
def test_syntax_errors(body: bytes, reason: str, offset: int) -> None:
    with pytest.raises(JsonSyntaxError) as info:
        parse_json(body)
    assert (info.value.reason, info.value.offset) == (reason, offset)
    assert str(info.value) == f"{reason} at offset: {offset}"


def test_rapidjson_extensions() -> None:
    value = parse_json(b'{"a": [NaN, -NaN, Inf, -Inf, Infinity, -Infinity], "b": 1}\nnot json')
    a = value["a"]
    assert math.isnan(a[0])
    assert math.isnan(a[1])
    assert a[2:] == [math.inf, -math.inf, math.inf, -math.inf]
    assert value["b"] == 1
    # A NUL byte ends the input like the end of the buffer does.
    assert parse_json(b'{"a": 1}\x00{') == {"a": 1}


def test_numbers_keep_rapidjson_types() -> None:
    value = parse_json(
        b"[0, -0, -0.0, 1.0, 1e2, 9223372036854775807, -9223372036854775808,"
        b" 18446744073709551615, 18446744073709551616, -9223372036854775809, NaN]"
    )
    assert [type(v).__name__ for v in value] == ["int"] * 2 + ["float"] * 3 + ["int"] * 3 + [
        "float"
    ] * 3
    assert value[7] == 2**64 - 1
    assert math.copysign(1.0, value[2]) == -1.0


def test_strings_are_raw_bytes() -> None:
    body = b'{"k": "\xff\xfe\\u00e9\\udc00", "\xc3\xa9": 1, NaN: 2}'
    with pytest.raises(JsonSyntaxError):
        parse_json(body)  # a NaN key is not a string
    value = parse_json(b'{"k": "\xff\xfe\\u00e9\\udc00"}')
    assert value["k"].encode("utf-8", "surrogateescape") == b"\xff\xfe\xc3\xa9\xed\xb0\x80"


def test_duplicate_members_keep_the_first() -> None:
    # Only the fallback parser sees NaN; RapidJSON's FindMember returns the first.
    assert parse_json(b'{"a": 1, "a": NaN}') == {"a": 1}


def test_deep_nesting_does_not_recurse() -> None:
    depth = 50_000
    value = parse_json(b"[" * depth + b"]" * depth)
    for _ in range(depth - 1):
        (value,) = value
    assert value == []
    dump = debug_string(parse_json(b"[" * depth + b"]" * depth))
    assert dump == "[" * 256


@pytest.mark.parametrize(
    ("value", "text"),
    [
        # RapidJSON's Grisu2 digits (checked against the library), not Python's repr.
        (27052790.567279875, "27052790.567279877"),
        (-2.8642007091008862e-06, "-0.0000028642007091008864"),
        (6.1906525609717515e22, "6.1906525609717519e22"),
        (5e-324, "5e-324"),
        (1e21, "1e21"),
        (1e20, "100000000000000000000.0"),
        (-0.0, "-0.0"),
    ],
)
def test_debug_string_doubles(value: float, text: str) -> None:
    assert debug_string(value) == text


def test_debug_string_layout_and_limit() -> None:
    value = {"a": [1, 2.5, {"b": "x\n"}], "c": {}, "d": [], "e": 1e30, "f": 1e-7, "g": 1.0}
    assert debug_string(value) == (
        '{\n    "a": [1, 2.5, {\n            "b": "x\\n"\n        }],\n    "c": {},\n'
        '    "d": [],\n    "e": 1e30,\n    "f": 1e-7,\n    "g": 1.0\n}'
    )
    # RapidJSON's default writer stops at a non-finite double.
    assert debug_string([1.0, math.nan, 2.0]) == "[1.0, "
    long = debug_string(list(range(1000)))
    assert 256 <= len(long) < 270
    assert long.startswith("[0, 1, 2")
