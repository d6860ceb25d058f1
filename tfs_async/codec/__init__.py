"""Codecs: numpy <-> TF Serving's wire forms, and protobuf messages <-> :mod:`tfs_async.types`.

- :mod:`~tfs_async.codec.dtypes`: TF ``DataType`` <-> numpy dtype.
- :mod:`~tfs_async.codec.tensor`: numpy <-> ``TensorProto`` (``tensor_content`` and ``*_val``).
- :mod:`~tfs_async.codec.predict_wire`: numpy <-> serialized Predict messages (gRPC hot path).
- :mod:`~tfs_async.codec.messages`: other protobuf messages <-> :mod:`tfs_async.types`.
- :mod:`~tfs_async.codec.example`: feature mappings -> ``tf.Example`` / REST examples.
- :mod:`~tfs_async.codec.json`: numpy <-> TF Serving's REST JSON (client side).
"""

from __future__ import annotations
