"""Model definitions: signatures, dtypes, Python models, Example parsing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tfs_async._proto import example_pb2, types_pb2
from tfs_async.testing.models import (
    CLASSIFY_METHOD,
    PREDICT_METHOD,
    PythonModel,
    Signature,
    TensorDef,
    classify_signature,
    dtype_enum,
    parse_examples,
    regress_signature,
    signature,
    tensor_def,
)


def test_signature_to_proto_matches_declaration() -> None:
    sig = signature(
        None,
        inputs={"x": tensor_def("DT_FLOAT", [-1, 1], name="x:0"), "k": "int64"},
        outputs={"y": (np.float32, None)},
    )
    proto = sig.to_proto()
    assert proto.method_name == PREDICT_METHOD
    assert proto.inputs["x"].name == "x:0"
    assert [d.size for d in proto.inputs["x"].tensor_shape.dim] == [-1, 1]
    assert proto.inputs["k"].dtype == types_pb2.DT_INT64
    assert proto.outputs["y"].tensor_shape.unknown_rank
    assert Signature.from_proto(proto).inputs["x"] == TensorDef(types_pb2.DT_FLOAT, (-1, 1), "x:0")


@pytest.mark.parametrize(
    ("given_dtype", "expected"),
    [
        ("DT_STRING", types_pb2.DT_STRING),
        (bytes, types_pb2.DT_STRING),
        ("float64", types_pb2.DT_DOUBLE),
        (np.uint8, types_pb2.DT_UINT8),
        (np.dtype("<U3"), types_pb2.DT_STRING),
        (types_pb2.DT_HALF, types_pb2.DT_HALF),
    ],
)
def test_dtype_enum_accepts_tf_names_numpy_and_values(given_dtype: object, expected: int) -> None:
    assert dtype_enum(given_dtype) == expected  # type: ignore[arg-type]


def test_bad_declarations_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="DT_NOPE"):
        dtype_enum("DT_NOPE")
    with pytest.raises(ValueError, match="unknown method 'predicts'"):
        signature(None, inputs={}, outputs={}, method="predicts")
    with pytest.raises(ValueError, match="either signatures or versions"):
        PythonModel("m")
    with pytest.raises(TypeError, match="signature 'serving_default' is dict"):
        PythonModel("m", {"serving_default": {"x": 1}})  # type: ignore[dict-item]


def test_classify_and_regress_signatures_follow_tf_conventions() -> None:
    c = classify_signature(None, classes=False)
    assert c.method_name == CLASSIFY_METHOD
    assert set(c.inputs) == {"inputs"}
    assert set(c.outputs) == {"scores"}
    assert c.inputs["inputs"].dtype == types_pb2.DT_STRING
    r = regress_signature(None)
    assert set(r.outputs) == {"outputs"}


async def test_python_model_versions_can_change() -> None:
    sig = signature(lambda t: t, inputs={"x": "DT_FLOAT"}, outputs={"x": "DT_FLOAT"})
    model = PythonModel("m", versions={1: {"serving_default": sig}})
    model.add_version(3, {"serving_default": sig})
    assert model.available_versions() == [1, 3]
    model.remove_version(1)
    assert model.available_versions() == [3]
    assert set(await model.load(3)) == {"serving_default"}
    with pytest.raises(RuntimeError, match="no version 1"):
        await model.load(1)


async def test_signature_call_converts_outputs_to_arrays() -> None:
    sig = signature(lambda t: {"y": [1, 2]}, inputs={}, outputs={"y": "DT_INT64"})
    out = await sig.call({})
    assert isinstance(out["y"], np.ndarray)
    assert out["y"].tolist() == [1, 2]
    bad = signature(lambda t: [1], inputs={}, outputs={})  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match="not a dict"):
        await bad.call({})


@given(
    st.lists(
        st.lists(st.floats(width=32, allow_nan=False), min_size=2, max_size=2),
        min_size=1,
        max_size=5,
    ),
    st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=1),
)
def test_parse_examples_roundtrips_feature_values(rows: list[list[float]], ids: list[int]) -> None:
    batch = []
    for row in rows:
        ex = example_pb2.Example()
        ex.features.feature["f"].float_list.value.extend(row)
        ex.features.feature["id"].int64_list.value.extend(ids)
        ex.features.feature["s"].bytes_list.value.append(b"tag")
        batch.append(ex.SerializeToString())
    parsed = parse_examples(batch, {"f": np.float32, "id": np.int64, "s": "DT_STRING"})
    np.testing.assert_array_equal(parsed["f"], np.array(rows, dtype=np.float32))
    assert parsed["id"].tolist() == [ids] * len(rows)
    assert parsed["s"].tolist() == [[b"tag"]] * len(rows)


def test_parse_examples_rejects_ragged_features() -> None:
    batch = []
    for n in (1, 2):
        ex = example_pb2.Example()
        ex.features.feature["f"].float_list.value.extend([1.0] * n)
        batch.append(ex.SerializeToString())
    with pytest.raises(ValueError, match="Number of float values") as info:
        parse_examples(batch, {"f": np.float32})
    # TensorFlow's ParseExample message, as TF Serving answers it (INVALID_ARGUMENT).
    assert str(info.value) == (
        "Name: <unknown>, Key: f, Index: 1.  Number of float values != expected.  "
        "Values size: 2 but output shape: [1]"
    )
