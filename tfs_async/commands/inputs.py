"""Inputs as ``saved_model_cli`` users give them, and TF Serving REST request bodies.

``--inputs 'x=a.npy;y=b.npz[key]'`` (files, never unpickled), ``--input_exprs
'x=[[1.0, 2.0]]'`` (Python literals, read by :func:`ast.literal_eval`, never
evaluated), ``--input_examples 'inputs=[{"f": [1.0]}]'`` (tf.Examples), and a REST
body (``instances`` or ``inputs``, ``{"b64": ...}`` for bytes) decoded to numpy so
it can go over gRPC as well.

>>> parse_exprs(["x=[[1.0, 2.0]]; s=['a', b'b']"])["s"].tolist()
[b'a', b'b']
>>> inputs, sig = decode_predict_request({"instances": [{"x": 1.0, "s": {"b64": "aGk="}}]})
>>> inputs["x"].tolist(), inputs["s"].tolist(), sig
([1.0], [b'hi'], None)
"""

from __future__ import annotations

import ast
import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tfs_async.commands.common import UsageError
from tfs_async.errors import InvalidInputError
from tfs_async.types import ModelSpec, SignatureSpec, TensorSpec
from tfs_async.validation import describe_signature

__all__ = [
    "decode_examples_request",
    "decode_predict_request",
    "json_array",
    "literal_array",
    "parse_examples",
    "parse_exprs",
    "parse_files",
    "split_specs",
    "typed_inputs",
]

_FILE_SPEC = re.compile(r"^(?P<name>[^=]+)=(?P<path>.+?)(?:\[(?P<key>[^\[\]]+)\])?$")


def split_specs(values: Iterable[str]) -> list[tuple[str, str]]:
    """``'a=1;b=2'`` items (from repeated flags too) as (name, value) pairs."""
    pairs: list[tuple[str, str]] = []
    for value in values:
        for item in value.split(";"):
            item = item.strip()
            if not item:
                continue
            name, sep, rest = item.partition("=")
            if not sep or not name.strip():
                raise UsageError(f"expected NAME=VALUE, got {item[:80]!r}")
            pairs.append((name.strip(), rest.strip()))
    return pairs


def _check_unique(pairs: list[tuple[str, Any]], flag: str) -> None:
    seen: set[str] = set()
    for name, _ in pairs:
        if name in seen:
            raise UsageError(f"{flag}: input {name!r} is given twice")
        seen.add(name)


def parse_files(values: Iterable[str]) -> dict[str, npt.NDArray[Any]]:
    """``--inputs``: ``name=file.npy``, ``name=file.npz[key]`` or a one-array ``.npz``."""
    out: dict[str, npt.NDArray[Any]] = {}
    for name, spec in split_specs(values):
        match = _FILE_SPEC.match(f"{name}={spec}")
        assert match is not None  # split_specs made sure of NAME=VALUE
        path, key = Path(match["path"]), match["key"]
        if name in out:
            raise UsageError(f"--inputs: input {name!r} is given twice")
        out[name] = _load(path, key, name)
    return out


def _load(path: Path, key: str | None, name: str) -> npt.NDArray[Any]:
    if not path.is_file():
        raise UsageError(f"--inputs {name}: no such file {str(path)!r}")
    try:
        loaded = np.load(path, allow_pickle=False)
    except ValueError as error:
        raise UsageError(
            f"--inputs {name}: {str(path)!r} is not a .npy/.npz file of plain arrays ({error})"
        ) from None
    if isinstance(loaded, np.ndarray):
        if key is not None:
            raise UsageError(f"--inputs {name}: {str(path)!r} is a .npy file, it has no [{key}]")
        return loaded
    with loaded:
        keys = list(loaded.keys())
        if key is None:
            if len(keys) != 1:
                raise UsageError(
                    f"--inputs {name}: {str(path)!r} holds {keys}: name one as {path}[KEY]"
                )
            key = keys[0]
        if key not in keys:
            raise UsageError(f"--inputs {name}: {str(path)!r} has no array {key!r}; it has {keys}")
        array: npt.NDArray[Any] = loaded[key]
        return array


def parse_exprs(values: Iterable[str]) -> dict[str, npt.NDArray[Any]]:
    """``--input_exprs``: ``name=<Python literal>`` (numbers, strings, bytes, nested lists)."""
    pairs = split_specs(values)
    _check_unique(pairs, "--input_exprs")
    out: dict[str, npt.NDArray[Any]] = {}
    for name, text in pairs:
        out[name] = literal_array(_literal(text, f"--input_exprs {name}"), name)
    return out


def _literal(text: str, where: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise UsageError(
            f"{where}: {text[:80]!r} is not a Python literal (numbers, strings, lists; "
            "expressions are not evaluated)"
        ) from None


def literal_array(value: Any, name: str) -> npt.NDArray[Any]:
    """A literal (nested lists/tuples of numbers, bools, str or bytes) as an array.

    Strings become bytes (DT_STRING); numbers keep numpy's natural dtype, which the
    client casts to the signature's where safe (``[1.0, 2]`` on a float32 model).
    """
    return _array(value, name, _text_or_bytes)


def _text_or_bytes(item: Any) -> bytes | None:
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):
        return item.encode("utf-8")
    return None


def _json_bytes(item: Any) -> bytes | None:
    if isinstance(item, str):
        return item.encode("utf-8")
    if isinstance(item, dict) and set(item) == {"b64"}:
        if not isinstance(item["b64"], str):
            raise UsageError(f"'b64' holds {type(item['b64']).__name__}, expected a string")
        try:
            return base64.b64decode(item["b64"], validate=True)
        except (binascii.Error, ValueError):
            raise UsageError(f"bad base64 {item['b64'][:40]!r}") from None
    return None


def _first_leaf(value: Any) -> Any:
    while isinstance(value, (list, tuple)) and value:
        value = value[0]
    return value


def _array(value: Any, name: str, as_bytes: Any) -> npt.NDArray[Any]:
    if as_bytes(_first_leaf(value)) is not None:
        return _bytes_array(value, name, as_bytes)
    try:
        array = np.asarray(value)
    except (ValueError, OverflowError) as error:
        raise UsageError(f"input {name!r} is not a rectangular array of numbers: {error}") from None
    if array.dtype.kind not in "biuf":
        raise UsageError(
            f"input {name!r}: expected numbers, bools or strings in a rectangular array, "
            f"got {str(value)[:80]}"
        )
    return array


def _bytes_array(value: Any, name: str, as_bytes: Any) -> npt.NDArray[np.object_]:
    shape: list[int] = []
    probe = value
    while isinstance(probe, (list, tuple)):
        shape.append(len(probe))
        if not probe:
            break
        probe = probe[0]
    flat: list[bytes] = []

    def walk(item: Any, depth: int) -> None:
        if depth == len(shape):
            converted = as_bytes(item)
            if converted is None:
                raise UsageError(
                    f"input {name!r}: strings mixed with {type(item).__name__} items "
                    f"({str(item)[:40]})"
                )
            flat.append(converted)
            return
        if not isinstance(item, (list, tuple)) or len(item) != shape[depth]:
            raise UsageError(f"input {name!r} is not a rectangular array (shape {shape})")
        for child in item:
            walk(child, depth + 1)

    walk(value, 0)
    out = np.empty(len(flat), dtype=object)
    out[:] = flat
    return out.reshape(shape)


def json_array(value: Any, name: str) -> npt.NDArray[Any]:
    """A TF Serving REST JSON value (``{"b64": ...}`` for bytes) as an array."""
    return _array(value, name, _json_bytes)


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"b64"}


def decode_predict_request(
    doc: Any,
) -> tuple[dict[str, npt.NDArray[Any]] | npt.NDArray[Any], str | None]:
    """A TF Serving REST Predict body -> (inputs, signature_name).

    Row form (``instances``: a list of values, or of objects naming each input)
    or columnar form (``inputs``: one value, or an object naming each input).
    One unnamed input comes back as an array (the client names it from the
    signature); named inputs as a dict.
    """
    if not isinstance(doc, dict):
        raise UsageError(f"request body: expected a JSON object, got {type(doc).__name__}")
    signature = doc.get("signature_name")
    if signature is not None and not isinstance(signature, str):
        raise UsageError("request body: 'signature_name' must be a string")
    if ("instances" in doc) == ("inputs" in doc):
        raise UsageError("request body: expected exactly one of 'instances' or 'inputs'")
    if "inputs" in doc:
        columns = doc["inputs"]
        if isinstance(columns, dict) and not _is_b64(columns):
            if not columns:
                raise UsageError("request body: 'inputs' names no input")
            return {k: json_array(v, k) for k, v in columns.items()}, signature or None
        return json_array(columns, "inputs"), signature or None
    rows = doc["instances"]
    if not isinstance(rows, list) or not rows:
        raise UsageError("request body: 'instances' must be a non-empty list")
    if not (isinstance(rows[0], dict) and not _is_b64(rows[0])):
        return json_array(rows, "instances"), signature or None
    names = list(rows[0])
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or _is_b64(row) or set(row) != set(names):
            raise UsageError(f"request body: instance {i} does not name the inputs {names}")
    return {n: json_array([row[n] for row in rows], n) for n in names}, signature or None


def _feature(value: Any) -> Any:
    if isinstance(value, list):
        return [_feature(v) for v in value]
    converted = _json_bytes(value) if _is_b64(value) else None
    return value if converted is None else converted


def _features(doc: Any, where: str) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise UsageError(f"{where}: expected an object of feature name -> value")
    return {str(k): _feature(v) for k, v in doc.items()}


def decode_examples_request(doc: Any) -> tuple[list[dict[str, Any]], dict[str, Any] | None, str]:
    """A TF Serving REST Classify/Regress body -> (examples, context, signature_name)."""
    if not isinstance(doc, dict):
        raise UsageError(f"request body: expected a JSON object, got {type(doc).__name__}")
    examples = doc.get("examples")
    if not isinstance(examples, list) or not examples:
        raise UsageError("request body: 'examples' must be a non-empty list")
    context = doc.get("context")
    signature = doc.get("signature_name") or ""
    if not isinstance(signature, str):
        raise UsageError("request body: 'signature_name' must be a string")
    return (
        [_features(ex, f"examples[{i}]") for i, ex in enumerate(examples)],
        None if context is None else _features(context, "context"),
        signature,
    )


def parse_examples(values: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """``--input_examples``: ``name=[{feature: value, ...}, ...]`` (JSON or Python literal).

    The name may be left out (``'[{...}]'``) for classify and regress, whose
    signatures have one input; it is then ``""``.
    """
    out: dict[str, list[dict[str, Any]]] = {}
    for value in values:
        for item in _split_top_level(value):
            name, text = "", item
            if not item.lstrip().startswith(("[", "{")):
                name, sep, text = item.partition("=")
                if not sep:
                    raise UsageError(
                        f"--input_examples: expected NAME=[{{...}}], got {item[:80]!r}"
                    )
                name = name.strip()
            examples = _examples_value(text.strip(), name)
            if name in out:
                raise UsageError(f"--input_examples: input {name!r} is given twice")
            out[name] = examples
    return out


def _split_top_level(value: str) -> list[str]:
    # ';' separates items, except inside brackets or quotes ('[{"a": "x;y"}]').
    items, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(value):
        if quote:
            if ch == quote and value[i - 1] != "\\":
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == ";" and depth == 0:
            items.append(value[start:i])
            start = i + 1
    items.append(value[start:])
    return [item.strip() for item in items if item.strip()]


def _examples_value(text: str, name: str) -> list[dict[str, Any]]:
    where = f"--input_examples {name}".rstrip()
    try:
        examples = json.loads(text)
    except ValueError:
        examples = _literal(text, where)
    if isinstance(examples, dict):
        examples = [examples]
    if not isinstance(examples, list) or not examples:
        raise UsageError(f"{where}: expected a non-empty list of {{feature: value}} objects")
    return [_features(ex, f"{where}[{i}]") for i, ex in enumerate(examples)]


def example_tensor(examples: Sequence[Mapping[str, Any]], name: str) -> npt.NDArray[np.object_]:
    """Serialized ``tf.Example``s, a DT_STRING tensor of shape [n] (``--input_examples``)."""
    from tfs_async.codec.example import encode_example

    out = np.empty(len(examples), dtype=object)
    out[:] = [
        encode_example(ex, name=f"{name}[{i}]").SerializeToString() for i, ex in enumerate(examples)
    ]
    return out


def typed_inputs(
    inputs: Mapping[str, npt.NDArray[Any]] | npt.NDArray[Any],
    signature: SignatureSpec,
    model: ModelSpec,
) -> dict[str, npt.NDArray[Any]]:
    """Inputs named and typed as ``signature`` declares them; shapes are left to the server.

    One unnamed array takes the name of a single-input signature. Numbers are cast
    to the declared dtype where numpy's ``same_kind`` rules allow and every value
    fits (``[1, 2]`` or ``[1.5]`` on a float32 input; not ``1.5`` on an int32 one);
    strings go to string inputs only. TF Serving itself accepts shapes the metadata
    does not spell out (``[1.0, 2.0]`` for a ``[-1, 1]`` input), so shapes are not
    checked here. Raises :class:`InvalidInputError` naming the model and the input.
    """
    if not isinstance(inputs, Mapping):
        if len(signature.inputs) != 1:
            raise InvalidInputError(
                f"signature {signature.name!r} has {len(signature.inputs)} inputs "
                f"{describe_signature(signature)}: name each input",
                expected=describe_signature(signature),
                model=model,
            )
        inputs = {next(iter(signature.inputs)): inputs}
    given, wanted = set(inputs), set(signature.inputs)
    if given != wanted:
        extra, missing = sorted(given - wanted), sorted(wanted - given)
        raise InvalidInputError(
            f"inputs do not match signature {signature.name!r}: extra {extra}, "
            f"missing {missing}; expected {describe_signature(signature)}",
            input_name=(extra or missing)[0],
            expected=describe_signature(signature),
            model=model,
        )
    return {
        name: _typed(name, value, signature.inputs[name], model) for name, value in inputs.items()
    }


def _typed(
    name: str, value: npt.NDArray[Any], spec: TensorSpec, model: ModelSpec
) -> npt.NDArray[Any]:
    want = spec.numpy_dtype
    if want is None or value.dtype == want:
        return value
    have = value.dtype
    if want.kind == "O":
        if have.kind in "SUO":
            return value
    elif have.kind in "biuf" and np.can_cast(have, want, "same_kind"):
        fits = True
        if have.kind in "iu" and want.kind in "iu" and value.size:
            info = np.iinfo(want)
            fits = bool(value.min() >= info.min and value.max() <= info.max)
        if fits:
            with np.errstate(over="raise"):
                try:
                    return value.astype(want)
                except FloatingPointError:
                    pass
        raise InvalidInputError(
            f"input {name!r}: some values do not fit {spec.dtype} ({want})",
            input_name=name,
            expected=f"{spec.dtype} values",
            model=model,
        )
    shown = "strings" if have.kind in "SUO" else str(have)
    raise InvalidInputError(
        f"input {name!r} is {shown}, the signature expects {spec.dtype} ({want})",
        input_name=name,
        expected=f"{name}: {spec.dtype}",
        model=model,
    )
