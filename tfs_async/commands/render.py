"""How the client subcommands print what they got: tables for people, JSON for programs.

JSON follows TF Serving's REST conventions: bytes that are UTF-8 as strings, other
bytes as ``{"b64": ...}``, non-finite floats as bare ``NaN`` / ``Infinity``.

>>> import numpy as np
>>> to_json_value(np.array([b"a", b"\\xff"], dtype=object))
['a', {'b64': '/w=='}]
>>> print(table([["name", "dtype"], ["x", "DT_FLOAT"]]))
name  dtype
x     DT_FLOAT
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from tfs_async.types import (
    ClassifyResult,
    ModelMetadata,
    ModelSpec,
    ModelVersionStatus,
    RegressResult,
    SignatureSpec,
    TensorSpec,
)

__all__ = [
    "classify_json",
    "classify_table",
    "dumps",
    "metadata_json",
    "metadata_text",
    "outputs_json",
    "outputs_table",
    "regress_json",
    "regress_table",
    "status_json",
    "status_table",
    "table",
    "to_json_value",
]


def dumps(doc: Any, *, indent: int | None = 2) -> str:
    """JSON text; non-finite floats as TF Serving writes them (``NaN``)."""
    return json.dumps(doc, indent=indent, allow_nan=True, ensure_ascii=False)


def table(rows: Sequence[Sequence[str]]) -> str:
    """Rows as left-aligned columns separated by two spaces (the first row is the header)."""
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _bytes_json(item: bytes) -> Any:
    try:
        return item.decode("utf-8")
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(item).decode("ascii")}


def to_json_value(array: npt.NDArray[Any]) -> Any:
    """An output array as JSON-ready Python values."""
    if array.dtype.kind in "OS":
        flat = [_bytes_json(bytes(v)) for v in array.ravel().tolist()]
        out = np.empty(len(flat), dtype=object)
        out[:] = flat
        return out.reshape(array.shape).tolist()
    if array.dtype.kind == "U":
        return array.tolist()
    if array.dtype.kind == "c":
        return np.stack([array.real, array.imag], axis=-1).tolist()
    return array.tolist()


def _spec_json(model: ModelSpec | None) -> dict[str, Any] | None:
    if model is None:
        return None
    doc: dict[str, Any] = {"name": model.name}
    if model.version is not None:
        doc["version"] = model.version
    if model.label is not None:
        doc["version_label"] = model.label
    if model.signature:
        doc["signature_name"] = model.signature
    return doc


def _shape(shape: tuple[int, ...] | None) -> str:
    if shape is None:
        return "unknown rank"
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _tensor_rows(kind: str, tensors: Mapping[str, TensorSpec]) -> list[list[str]]:
    return [
        [kind, name, spec.dtype, _shape(spec.shape), spec.tensor_name or "-"]
        for name, spec in tensors.items()
    ]


def _signature_text(sig: SignatureSpec) -> str:
    rows = [["", "name", "dtype", "shape", "tensor"]]
    rows += _tensor_rows("input", sig.inputs)
    rows += _tensor_rows("output", sig.outputs)
    body = "\n".join("  " + line for line in table(rows).splitlines())
    return f"signature {sig.name!r}  method {sig.method_name}\n{body}"


def metadata_text(metadata: ModelMetadata, signature: str | None = None) -> str:
    """The signatures as tables: inputs, outputs, dtypes, shapes, graph tensors, method."""
    head = f"model {metadata.model}"
    sigs = [metadata.signatures[signature]] if signature else list(metadata.signatures.values())
    return "\n\n".join([head, *(_signature_text(s) for s in sigs)])


def _tensor_json(spec: TensorSpec) -> dict[str, Any]:
    return {
        "dtype": spec.dtype,
        "shape": None if spec.shape is None else list(spec.shape),
        "name": spec.tensor_name,
    }


def metadata_json(metadata: ModelMetadata, signature: str | None = None) -> dict[str, Any]:
    """The metadata as a JSON object: ``model_spec`` and ``signature_def`` by name."""
    sigs = [metadata.signatures[signature]] if signature else list(metadata.signatures.values())
    return {
        "model_spec": _spec_json(metadata.model),
        "signature_def": {
            s.name: {
                "method_name": s.method_name,
                "inputs": {k: _tensor_json(v) for k, v in s.inputs.items()},
                "outputs": {k: _tensor_json(v) for k, v in s.outputs.items()},
            }
            for s in sigs
        },
    }


def status_table(model: str, statuses: Sequence[ModelVersionStatus]) -> str:
    """Versions, newest first: state and the load error if any."""
    rows = [["version", "state", "error"]]
    for s in statuses:
        error = "" if not s.error_code else f"{_code_name(s.error_code)}: {s.error_message}"
        rows.append([str(s.version), s.state.name, error])
    return f"model {model!r}\n" + table(rows)


def _code_name(code: int) -> str:
    from tfs_async.errors import StatusCode

    try:
        return StatusCode(code).name
    except ValueError:
        return str(code)


def status_json(model: str, statuses: Sequence[ModelVersionStatus]) -> dict[str, Any]:
    """TF Serving's REST status answer, versions as integers."""
    return {
        "model": model,
        "model_version_status": [
            {
                "version": s.version,
                "state": s.state.name,
                "status": {
                    "error_code": _code_name(s.error_code),
                    "error_message": s.error_message,
                },
            }
            for s in statuses
        ],
    }


def _value_text(array: npt.NDArray[Any]) -> str:
    if array.dtype.kind in "OS":
        shown = np.empty(array.shape, dtype=object)
        for index, item in np.ndenumerate(array):
            value = _bytes_json(bytes(item))
            shown[index] = value if isinstance(value, str) else f"b64:{value['b64']}"
        array = shown
    return np.array2string(array, threshold=50, edgeitems=3, max_line_width=100, separator=", ")


def outputs_table(outputs: Mapping[str, npt.NDArray[Any]], model: ModelSpec | None) -> str:
    """Each output: name, dtype, shape, then its values (long arrays summarised)."""
    rows = [["output", "dtype", "shape", "value"]]
    for name, array in sorted(outputs.items()):
        lines = _value_text(array).splitlines() or [""]
        rows.append([name, str(array.dtype), _shape(array.shape), lines[0]])
        rows.extend(["", "", "", line] for line in lines[1:])
    head = f"model {model}\n" if model is not None else ""
    return head + table(rows)


def outputs_json(
    outputs: Mapping[str, npt.NDArray[Any]], model: ModelSpec | None
) -> dict[str, Any]:
    """``{"model_spec": ..., "outputs": {name: value}}`` (TF Serving's columnar answer)."""
    return {
        "model_spec": _spec_json(model),
        "outputs": {name: to_json_value(array) for name, array in sorted(outputs.items())},
    }


def classify_table(result: ClassifyResult) -> str:
    """Per example, its (label, score) pairs."""
    rows = [["example", "label", "score"]]
    for i, pairs in enumerate(result.classes):
        for label, score in pairs:
            rows.append([str(i), label, f"{score:.6g}"])
    head = f"model {result.model}\n" if result.model is not None else ""
    return head + table(rows)


def classify_json(result: ClassifyResult) -> dict[str, Any]:
    """TF Serving's REST classify answer: ``results`` of [label, score] pairs."""
    return {
        "model_spec": _spec_json(result.model),
        "results": [[[label, score] for label, score in pairs] for pairs in result.classes],
    }


def regress_table(result: RegressResult) -> str:
    """Per example, its regressed value."""
    rows = [["example", "value"]]
    rows += [[str(i), f"{float(v):.6g}"] for i, v in enumerate(result.values)]
    head = f"model {result.model}\n" if result.model is not None else ""
    return head + table(rows)


def regress_json(result: RegressResult) -> dict[str, Any]:
    """TF Serving's REST regress answer: ``results``, one number per example."""
    return {"model_spec": _spec_json(result.model), "results": result.values.tolist()}
