"""numpy <-> TF Serving's REST JSON, client side.

Requests are written with orjson, numeric arrays straight from their buffers
(``OPT_SERIALIZE_NUMPY``, no ``tolist()``). Responses are read the way TF Serving
writes them, which is not always RFC 8259 JSON: bare ``NaN`` / ``Infinity`` /
``-Infinity`` tokens appear for non-finite floats.

>>> import numpy as np
>>> encode_predict_body({"x": np.array([[1.0, 2.5]], np.float32)})
b'{"inputs":{"x":[[1.0,2.5]]}}'
>>> decode_predict_body(b'{"predictions": [[NaN, 9e+06]]}')["predictions"].tolist()
[[nan, 9000000.0]]
"""

from __future__ import annotations

import base64
import binascii
import json as _std_json
import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import orjson
from google.protobuf import json_format

from tfs_async._proto import get_model_metadata_pb2, get_model_status_pb2, model_pb2
from tfs_async.codec import dtypes
from tfs_async.codec.example import example_to_json
from tfs_async.codec.messages import model_spec_from_proto, signature_from_proto, status_from_proto
from tfs_async.codec.tensor import to_array
from tfs_async.errors import InvalidArgumentError, InvalidInputError, ResponseDecodeError
from tfs_async.types import Features, ModelMetadata, ModelVersionStatus, SignatureSpec

__all__ = [
    "Body",
    "decode_classify_body",
    "decode_metadata_body",
    "decode_predict_body",
    "decode_regress_body",
    "decode_status_body",
    "encode_examples_body",
    "encode_predict_body",
    "loads",
    "to_json_value",
]

# A response body as a transport hands it over.
Body: TypeAlias = bytes | bytearray | memoryview | str

_NUMPY = orjson.OPT_SERIALIZE_NUMPY


# ---------------------------------------------------------------------------- parsing


def loads(body: Body) -> Any:
    """Parse JSON that may hold TF Serving's bare ``NaN`` / ``Infinity`` tokens.

    orjson first; only a document it refuses is parsed again by the standard
    library, which accepts those tokens, keeps integers exact and, for strings that
    are not UTF-8, keeps their bytes as surrogate escapes. Malformed JSON raises
    :class:`ResponseDecodeError`.

    >>> loads(b'{"a": [NaN, -Infinity, 9223372036854775807]}')
    {'a': [nan, -inf, 9223372036854775807]}
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        # TF Serving writes string outputs' raw bytes, not always UTF-8: keep them
        # as surrogates, which the decoders turn back into the same bytes.
        text = body if isinstance(body, str) else bytes(body).decode("utf-8", "surrogateescape")
        return _std_json.loads(text)
    except (ValueError, RecursionError) as exc:
        snippet = bytes(body[:200]) if not isinstance(body, str) else body[:200].encode()
        raise ResponseDecodeError(f"response is not JSON ({exc}): {snippet!r}") from None


# ---------------------------------------------------------------------------- encoding


def _finite_or_fragment(arr: npt.NDArray[Any]) -> Any:
    # orjson writes NaN/inf as null, which TF rejects; TF reads the bare tokens.
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        return orjson.Fragment(_std_json.dumps(arr.tolist()).encode())
    return arr[()] if arr.ndim == 0 else arr


def _b64(value: bytes) -> dict[str, str]:
    return {"b64": base64.b64encode(value).decode("ascii")}


def _string_value(items: npt.NDArray[Any]) -> Any:
    # str items stay JSON strings; bytes items always go as {"b64": ...}.
    flat = items.ravel().tolist()
    out = np.empty(len(flat), dtype=object)
    out[:] = [v if isinstance(v, str) else _b64(v) for v in flat]
    return out.reshape(items.shape).tolist()


# numpy arrays orjson writes straight from their buffer as TF Serving reads them.
_PLAIN_DTYPES = frozenset(
    np.dtype(t)
    for t in (
        np.float32,
        np.float64,
        np.int8,
        np.int16,
        np.int32,
        np.int64,
        np.uint8,
        np.uint16,
        np.uint32,
        np.uint64,
        np.bool_,
    )
)


def _prepare(value: Any, name: str) -> tuple[tuple[int, ...], Any]:
    """(shape, payload): a native C-order numeric array, or nested lists of strings."""
    if (
        type(value) is np.ndarray
        and value.dtype in _PLAIN_DTYPES
        and value.ndim
        and value.flags.c_contiguous
    ):
        # The common case, without to_array's checks (they cannot fail for it).
        return value.shape, value
    arr = to_array(value, name=name)  # validates: ragged, None, mixed, dtype
    kind = arr.dtype.kind
    if kind in "SUO":
        # to_array made str into bytes; the caller's own items say str or bytes.
        source = value if isinstance(value, np.ndarray) else np.asarray(value, dtype=object)
        return arr.shape, _string_value(source)
    if not dtypes.rest_numeric(arr.dtype):
        datatype = dtypes.datatype_name(dtypes.to_datatype(arr.dtype, name=name))
        raise InvalidInputError(
            f"input {name!r}: dtype {arr.dtype} ({datatype}) cannot be sent over REST; "
            "TF Serving's JSON API carries only float32/64, int8-64, uint8-64, bool and "
            "strings (use gRPC for half, bfloat16 and complex)",
            input_name=name,
            expected="float32/64, (u)int8-64, bool or strings",
        )
    # orjson reads only native-order C-contiguous buffers.
    return arr.shape, arr.astype(arr.dtype.newbyteorder("="), order="C", copy=False)


def _finish(payload: Any) -> Any:
    return _finite_or_fragment(payload) if isinstance(payload, np.ndarray) else payload


def to_json_value(value: Any, *, name: str = "tensor") -> Any:
    """An array as a value that orjson (``OPT_SERIALIZE_NUMPY``) writes as TF Serving reads it.

    Numeric arrays stay arrays (native byte order, C order); strings become nested
    lists of str (for str items) or ``{"b64": ...}`` (for bytes items); float16,
    bfloat16 and complex raise :class:`InvalidInputError`: TF Serving's REST API
    cannot carry them.
    """
    return _finish(_prepare(value, name)[1])


def encode_predict_body(
    inputs: Mapping[str, Any],
    *,
    signature_name: str | None = None,
    row_format: bool = False,
) -> bytes:
    """A Predict request body: columnar ``{"inputs": {name: value}}`` or row ``instances``.

    Inputs are always named in columnar form. Row form sends one input as a plain
    list of instances and several as one object per instance, all of which must
    share their first dimension. Raises :class:`InvalidInputError` naming the input
    before anything is sent.

    >>> encode_predict_body({"x": np.array([1, 2])}, signature_name="s", row_format=True)
    b'{"signature_name":"s","instances":[1,2]}'
    """
    if not inputs:
        raise InvalidInputError("no inputs given", expected="at least one named input")
    doc: dict[str, Any] = {}
    if signature_name:
        doc["signature_name"] = signature_name
    prepared = {name: _prepare(value, name) for name, value in inputs.items()}
    if not row_format:
        plain = {name: payload for name, (_, payload) in prepared.items()}
        doc["inputs"] = plain
        try:
            body = orjson.dumps(doc, option=_NUMPY)
        except TypeError:  # orjson.JSONEncodeError: a rank-0 array, say
            pass
        else:
            # orjson writes NaN and +-inf as null (TF wants its bare tokens); a numeric
            # array cannot hold null otherwise, so only then is the slower path needed.
            if b"null" not in body:
                return body
        doc["inputs"] = {name: _finish(payload) for name, payload in plain.items()}
    else:
        doc["instances"] = _instances(prepared)
    return orjson.dumps(doc, option=_NUMPY)


def _instances(prepared: dict[str, tuple[tuple[int, ...], Any]]) -> Any:
    for name, (shape, _) in prepared.items():
        if not shape:
            raise InvalidInputError(
                f"input {name!r}: row format needs a batch dimension, got a scalar",
                input_name=name,
                expected="an array of rank >= 1",
            )
    if len(prepared) == 1:
        return _finish(next(iter(prepared.values()))[1])
    batch = {shape[0] for shape, _ in prepared.values()}
    if len(batch) != 1:
        raise InvalidInputError(
            "row format needs every input to have the same first dimension, got "
            + ", ".join(f"{n}: {shape[0]}" for n, (shape, _) in prepared.items()),
            expected="inputs sharing their first (batch) dimension",
        )
    rows = batch.pop()
    # One object per instance; each row of an array is a view, not a copy.
    return [
        {name: _finish(payload[i]) for name, (_, payload) in prepared.items()} for i in range(rows)
    ]


def encode_examples_body(
    examples: Sequence[Features],
    context: Features | None = None,
    *,
    signature_name: str | None = None,
) -> bytes:
    """A Classify/Regress request body: ``examples`` (and ``context``), bytes as b64.

    >>> encode_examples_body([{"x": 2.0, "tag": "a"}], signature_name="s")
    b'{"signature_name":"s","examples":[{"x":2.0,"tag":"a"}]}'
    """
    if isinstance(examples, Mapping) or not examples:
        raise InvalidInputError(
            "examples: expected a non-empty sequence of feature mappings",
            input_name="examples",
            expected="a non-empty sequence of feature mappings",
        )
    doc: dict[str, Any] = {}
    if signature_name:
        doc["signature_name"] = signature_name
    if context is not None:
        doc["context"] = _nonfinite_tokens(example_to_json(context, name="context"))
    doc["examples"] = [
        _nonfinite_tokens(example_to_json(ex, name=f"examples[{i}]"))
        for i, ex in enumerate(examples)
    ]
    return orjson.dumps(doc)


def _nonfinite_tokens(example: dict[str, Any]) -> dict[str, Any]:
    for key, value in example.items():
        items = value if isinstance(value, list) else [value]
        if any(isinstance(v, float) and not math.isfinite(v) for v in items):
            example[key] = orjson.Fragment(_std_json.dumps(value).encode())
    return example


# ---------------------------------------------------------------------------- decoding


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and "b64" in value


def _bytes_item(value: Any, name: str) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    if _is_b64(value) and isinstance(value["b64"], str):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError):
            raise ResponseDecodeError(f"output {name!r}: bad base64 {value['b64']!r}") from None
    raise ResponseDecodeError(
        f"output {name!r}: expected a string or {{'b64': ...}}, got {type(value).__name__}"
    )


def _strings(value: Any, name: str) -> npt.NDArray[np.object_]:
    try:
        arr = np.array(value, dtype=object)
    except ValueError as exc:
        raise ResponseDecodeError(f"output {name!r} is not a rectangular array: {exc}") from None
    out = np.empty(arr.size, dtype=object)
    out[:] = [_bytes_item(v, name) for v in arr.ravel().tolist()]
    return out.reshape(arr.shape)


def _has_strings(value: Any) -> bool:
    while isinstance(value, list) and value:
        value = value[0]
    return isinstance(value, str) or _is_b64(value)


def _to_array(value: Any, name: str, dtype: np.dtype[Any] | None) -> npt.NDArray[Any]:
    if (dtype is not None and dtype.kind == "O") or (dtype is None and _has_strings(value)):
        return _strings(value, name)
    try:
        # A finite number beyond the dtype's range is an error, not a silent inf.
        with np.errstate(over="raise"):
            if dtype is not None:
                return np.array(value, dtype=dtype)
            arr = np.array(value)
            if arr.dtype.kind == "f":
                return arr.astype(np.float32)
    except FloatingPointError:
        expected = dtype if dtype is not None else np.dtype(np.float32)
        raise ResponseDecodeError(
            f"output {name!r} holds numbers out of {expected}'s range: {value!r:.200}"
        ) from None
    except (ValueError, TypeError, OverflowError) as exc:
        expected_s = f" of {dtype}" if dtype is not None else ""
        raise ResponseDecodeError(
            f"output {name!r} is not a rectangular array{expected_s}: {exc}"
        ) from None
    kind = arr.dtype.kind
    if kind == "i":
        return arr.astype(np.int64, copy=False)
    if kind in "bu":
        return arr
    raise ResponseDecodeError(f"output {name!r} holds values of no tensor type: {value!r:.200}")


def _output_dtype(signature: SignatureSpec | None, name: str) -> np.dtype[Any] | None:
    if signature is None or name not in signature.outputs:
        return None
    return signature.outputs[name].numpy_dtype


def _single_name(signature: SignatureSpec | None, key: str, output_filter: Sequence[str]) -> str:
    if signature is not None and len(signature.outputs) == 1:
        return next(iter(signature.outputs))
    if signature is None and len(output_filter) == 1:
        # The one output asked for: an unnamed single output can only be that one.
        return output_filter[0]
    return key


def decode_predict_body(
    body: Body,
    *,
    signature: SignatureSpec | None = None,
    output_filter: Sequence[str] = (),
) -> dict[str, npt.NDArray[Any]]:
    """A Predict response body -> output name -> array.

    Reads ``predictions`` (row) and ``outputs`` (columnar), one unnamed output or
    several named ones; ``{"b64": ...}`` items become bytes.

    Names: a single unnamed output is named after the signature's only output when
    the signature is given (what TF Serving's metadata names it), else after the
    one name of ``output_filter`` (REST cannot tell a wrong name then), else after
    the answer's key, ``"outputs"`` or ``"predictions"``.

    dtypes: the signature's when given. Without it, from the JSON tokens as TF
    Serving's writer writes them (it always gives floats a ``.`` or an exponent,
    ``NaN``/``Infinity`` included, and integers none): decimals -> float32 (what
    DT_FLOAT, the usual output, holds; DT_DOUBLE outputs lose their extra digits),
    integers -> int64 (any int dtype; beyond int64: uint64), ``true``/``false`` ->
    bool, strings and ``{"b64": ...}`` -> bytes (object arrays), an empty list (no
    values, no type) -> float32.

    ``output_filter`` keeps only those outputs (REST cannot ask for fewer); a name
    the answer lacks raises InvalidArgumentError in the server's words. Malformed
    bodies raise :class:`ResponseDecodeError`.

    >>> out = decode_predict_body(b'{"outputs": {"y": [1.5], "n": [2]}}')
    >>> out["y"].dtype, out["n"].dtype
    (dtype('float32'), dtype('int64'))
    """
    doc = loads(body)
    if not isinstance(doc, dict):
        raise ResponseDecodeError(f"response is not a JSON object: {doc!r:.200}")
    if "outputs" in doc:
        key = "outputs"
        value = doc["outputs"]
        if isinstance(value, dict) and not _is_b64(value):
            raw: dict[str, Any] = value
        else:
            raw = {_single_name(signature, key, output_filter): value}
    elif "predictions" in doc:
        raw = _split_rows(doc["predictions"], signature, output_filter)
    else:
        raise ResponseDecodeError(
            f"response has neither 'predictions' nor 'outputs': keys {sorted(doc)}"
        )
    result = {
        name: _to_array(value, name, _output_dtype(signature, name)) for name, value in raw.items()
    }
    if output_filter:
        for alias in output_filter:
            if alias not in result:
                # The server's own words for it (it would have said so over gRPC).
                raise InvalidArgumentError(
                    f"output tensor alias not found in signature: {alias} "
                    f"Outputs expected to be in the set {{{','.join(sorted(result))}}}."
                )
        result = {n: result[n] for n in output_filter}
    return result


def _split_rows(
    rows: Any, signature: SignatureSpec | None, output_filter: Sequence[str]
) -> dict[str, Any]:
    if not isinstance(rows, list):
        raise ResponseDecodeError(f"'predictions' is not a list: {rows!r:.200}")
    if not rows:
        # Batch 0: nothing says which outputs there were but the signature.
        if signature is not None:
            names = list(signature.outputs)
        else:
            names = list(output_filter) or ["predictions"]
        return {name: [] for name in names}
    if not (isinstance(rows[0], dict) and not _is_b64(rows[0])):
        return {_single_name(signature, "predictions", output_filter): rows}
    names = list(rows[0])
    columns: dict[str, list[Any]] = {name: [] for name in names}
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or set(row) != set(names):
            raise ResponseDecodeError(
                f"'predictions' row {i} does not hold the outputs {names} of row 0"
            )
        for name in names:
            columns[name].append(row[name])
    return columns


def _results(body: Body) -> list[Any]:
    doc = loads(body)
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), list):
        raise ResponseDecodeError(f"response has no 'results' list: {doc!r:.200}")
    results: list[Any] = doc["results"]
    return results


def decode_classify_body(body: Body) -> list[list[tuple[str, float]]]:
    """A Classify response body: per example, its (label, score) pairs.

    >>> decode_classify_body(b'{"results": [[["a", 0.25], ["b", 0.75]]]}')
    [[('a', 0.25), ('b', 0.75)]]
    """
    out: list[list[tuple[str, float]]] = []
    for i, example in enumerate(_results(body)):
        if not isinstance(example, list):
            raise ResponseDecodeError(f"classify result {i} is not a list: {example!r:.200}")
        pairs: list[tuple[str, float]] = []
        for pair in example:
            if (
                not isinstance(pair, list)
                or len(pair) != 2
                or not isinstance(pair[0], str)
                or not isinstance(pair[1], (int, float))
            ):
                raise ResponseDecodeError(
                    f"classify result {i}: expected [label, score], got {pair!r:.200}"
                )
            pairs.append((pair[0], float(np.float32(pair[1]))))
        out.append(pairs)
    return out


def decode_regress_body(body: Body) -> npt.NDArray[np.float32]:
    """A Regress response body: one float32 per example.

    >>> decode_regress_body(b'{"results": [0.5, Infinity]}')
    array([0.5, inf], dtype=float32)
    """
    results = _results(body)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in results):
        raise ResponseDecodeError(f"regress results are not all numbers: {results!r:.200}")
    return np.array(results, dtype=np.float32)


def _non_utf8(value: Any, path: str) -> tuple[str, bytes] | None:
    """The first string (key or value) under ``value`` that is not UTF-8 text: (path, its bytes).

    :func:`loads` keeps a body's non-UTF-8 bytes as surrogate escapes; protobuf's
    upb parser cannot take such a string (it fails with an untyped SystemError).

    >>> _non_utf8({"a": ["ok", "\\udcff"]}, "$")[0], _non_utf8({"a": "ok"}, "$")
    ('$.a[1]', None)
    """
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path, value.encode("utf-8", "surrogateescape")
        return None
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _non_utf8(item, f"{path}[{i}]")
            if found is not None:
                return found
    elif isinstance(value, dict):
        for key, item in value.items():
            found = _non_utf8(key, path) or _non_utf8(item, f"{path}.{key}")
            if found is not None:
                return found
    return None


def _parse_proto(doc: Any, message: Any, what: str) -> Any:
    bad = _non_utf8(doc, "$")
    if bad is not None:
        where, raw = bad
        raise ResponseDecodeError(f"{what} JSON has a string that is not UTF-8 at {where}: {raw!r}")
    try:
        return json_format.ParseDict(doc, message, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, AttributeError) as exc:
        raise ResponseDecodeError(f"{what} JSON does not parse: {exc}") from None


def decode_status_body(body: Body) -> list[ModelVersionStatus]:
    """A model status body (``{"model_version_status": [...]}``, versions as strings).

    >>> [s] = decode_status_body(b'{"model_version_status": [{"version": "3", "state":'
    ...     b' "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}')
    >>> s.version, s.state.name, s.error_code
    (3, 'AVAILABLE', 0)
    """
    doc = loads(body)
    if not isinstance(doc, dict):
        raise ResponseDecodeError(f"status response is not a JSON object: {doc!r:.200}")
    proto = _parse_proto(doc, get_model_status_pb2.GetModelStatusResponse(), "model status")
    return status_from_proto(proto)


def decode_metadata_body(body: Body) -> ModelMetadata:
    """A model metadata body (``metadata.signature_def.signature_def.<sig>``, snake_case)."""
    doc = loads(body)
    if not isinstance(doc, dict):
        raise ResponseDecodeError(f"metadata response is not a JSON object: {doc!r:.200}")
    spec = model_spec_from_proto(
        _parse_proto(doc.get("model_spec", {}), model_pb2.ModelSpec(), "model_spec")
    )
    if spec is None:
        raise ResponseDecodeError("metadata response has no model_spec name")
    metadata = doc.get("metadata")
    sig_doc = metadata.get("signature_def") if isinstance(metadata, dict) else None
    if not isinstance(sig_doc, dict):
        raise ResponseDecodeError(
            f"metadata response for {spec} has no metadata.signature_def object"
        )
    sig_map = _parse_proto(
        sig_doc, get_model_metadata_pb2.SignatureDefMap(), "signature_def"
    ).signature_def
    return ModelMetadata(
        model=spec,
        signatures={k: signature_from_proto(k, sig_map[k]) for k in sorted(sig_map)},
    )
