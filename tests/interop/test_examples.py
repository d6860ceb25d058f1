"""Our tf.Example encoding against TensorFlow's ``tf.train.Example`` and ``tf.io.parse_example``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorflow_serving.apis import input_pb2 as g_input

from tfs_async.codec.example import encode_example, encode_input

pytestmark = pytest.mark.interop

PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NAMES = st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=6)
FLOATS = st.floats(width=32, allow_nan=False)
INTS = st.integers(-(2**63), 2**63 - 1)
BYTES = st.binary(max_size=6)
# One feature: a scalar or a flat list of one kind, as a user writes it.
FEATURE = st.one_of(
    FLOATS,
    INTS,
    BYTES,
    st.lists(FLOATS, min_size=1, max_size=4),
    st.lists(INTS, min_size=1, max_size=4),
    st.lists(BYTES, min_size=1, max_size=4),
)
FEATURES = st.dictionaries(NAMES, FEATURE, min_size=1, max_size=4)


def _tf_feature(value: Any) -> tf.train.Feature:
    """The feature TensorFlow's own classes build for ``value``."""
    values = value if isinstance(value, list) else [value]
    if isinstance(values[0], bytes):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
    if isinstance(values[0], float):
        return tf.train.Feature(float_list=tf.train.FloatList(value=values))
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def _tf_example(features: dict[str, Any]) -> tf.train.Example:
    return tf.train.Example(
        features=tf.train.Features(feature={k: _tf_feature(v) for k, v in features.items()})
    )


@PROPERTY
@given(features=FEATURES)
def test_our_example_is_tensorflows_example(features: dict[str, Any]) -> None:
    ours = encode_example(features)
    assert tf.train.Example.FromString(ours.SerializeToString()) == _tf_example(features)


@PROPERTY
@given(batch=st.lists(st.fixed_dictionaries({"x": FLOATS, "id": BYTES}), min_size=1, max_size=4))
def test_tf_parse_example_reads_our_batch(batch: list[dict[str, Any]]) -> None:
    request_input = g_input.Input.FromString(encode_input(batch).SerializeToString())
    serialized = [e.SerializeToString() for e in request_input.example_list.examples]
    parsed = tf.io.parse_example(
        serialized,
        {"x": tf.io.FixedLenFeature([], tf.float32), "id": tf.io.FixedLenFeature([], tf.string)},
    )
    np.testing.assert_array_equal(
        parsed["x"].numpy(), np.array([e["x"] for e in batch], np.float32)
    )
    assert parsed["id"].numpy().tolist() == [e["id"] for e in batch]


def test_context_goes_where_tf_serving_reads_it() -> None:
    request_input = g_input.Input.FromString(
        encode_input([{"x": 1.0}, {"x": 2.0}], context={"user": b"ann"}).SerializeToString()
    )
    assert request_input.WhichOneof("kind") == "example_list_with_context"
    with_context = request_input.example_list_with_context
    assert with_context.context == _tf_example({"user": b"ann"})
    assert list(with_context.examples) == [_tf_example({"x": 1.0}), _tf_example({"x": 2.0})]
