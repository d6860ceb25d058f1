"""TF Serving's REST JSON, byte for byte: request bodies in, response bodies out.

- :mod:`.reader`: JSON text -> Python values, as RapidJSON reads it.
- :mod:`.writer`: RapidJSON's writer text (numbers, strings, floats as TF writes them).
- :mod:`.request`: request bodies -> protos, element by element (the exact path).
- :mod:`.dense`: dense numeric tensors read and written with numpy, falling back to
  the exact path for everything else (what the REST service runs).
- :mod:`.response`: protos -> response bodies.

The names below are the ones the REST service uses; predict inputs and outputs
go through the fast path.

>>> from tfs_async._proto import types_pb2
>>> body = parse_predict_body(b'{"inputs": [1, 2]}')
>>> tensors, fmt = predict_inputs_from_json(body, {"x": types_pb2.DT_INT64})
>>> predict_outputs_to_json(tensors, fmt)
b'{\\n    "outputs": [\\n        1,\\n        2\\n    ]\\n}'
"""

from __future__ import annotations

from tfs_async.testing.rest_json.dense import predict_inputs_from_json, predict_outputs_to_json
from tfs_async.testing.rest_json.request import (
    PredictBody,
    PredictFormat,
    parse_classify_regress_body,
    parse_predict_body,
)
from tfs_async.testing.rest_json.response import (
    classification_result_to_json,
    error_to_json,
    metadata_to_json,
    regression_result_to_json,
    status_to_json,
)

__all__ = [
    "PredictBody",
    "PredictFormat",
    "classification_result_to_json",
    "error_to_json",
    "metadata_to_json",
    "parse_classify_regress_body",
    "parse_predict_body",
    "predict_inputs_from_json",
    "predict_outputs_to_json",
    "regression_result_to_json",
    "status_to_json",
]
