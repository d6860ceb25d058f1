"""The committed generated protos match protos/, and keep TF Serving's wire contract."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import descriptor_pool

from tfs_async import _grpc_methods
from tfs_async._proto import (
    get_model_status_pb2,
    model_server_config_pb2,
    predict_pb2,
    tensor_pb2,
)

REPO = Path(__file__).resolve().parent.parent
PROTO_DIR = REPO / "protos"
GENERATED = REPO / "tfs_async" / "_proto"


def test_regenerating_protos_changes_nothing(tmp_path: Path) -> None:
    sources = sorted(str(p.relative_to(PROTO_DIR)) for p in PROTO_DIR.rglob("*.proto"))
    assert sources, "no .proto files found"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTO_DIR}",
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            *sources,
        ],
        check=True,
        cwd=PROTO_DIR,
    )
    fresh = {p.relative_to(tmp_path / "tfs_async" / "_proto") for p in tmp_path.rglob("*_pb2.py*")}
    committed = {p.relative_to(GENERATED) for p in GENERATED.glob("*_pb2.py*")}
    assert fresh == committed, "generated files differ from the committed set: run `make protos`"
    stale = [
        str(rel)
        for rel in sorted(fresh)
        if (tmp_path / "tfs_async" / "_proto" / rel).read_bytes() != (GENERATED / rel).read_bytes()
    ]
    assert not stale, f"committed generated protos are stale (run `make protos`): {stale}"


def test_our_package_never_uses_tensorflow_names() -> None:
    # Registering tensorflow.* names in the default pool would clash with tensorflow itself.
    pool = descriptor_pool.Default()  # type: ignore[no-untyped-call]
    for name in ("tensorflow.TensorProto", "tensorflow.serving.PredictRequest"):
        with pytest.raises(KeyError):
            pool.FindMessageTypeByName(name)
    assert predict_pb2.PredictRequest.DESCRIPTOR.full_name.startswith("tfs_async.")


@pytest.mark.parametrize(
    ("message", "numbers"),
    [
        (predict_pb2.PredictRequest, {"model_spec": 1, "inputs": 2, "output_filter": 3}),
        (predict_pb2.PredictResponse, {"outputs": 1, "model_spec": 2}),
        (
            tensor_pb2.TensorProto,
            {
                "dtype": 1,
                "tensor_shape": 2,
                "version_number": 3,
                "tensor_content": 4,
                "float_val": 5,
                "double_val": 6,
                "int_val": 7,
                "string_val": 8,
                "scomplex_val": 9,
                "int64_val": 10,
                "bool_val": 11,
                "dcomplex_val": 12,
                "half_val": 13,
                "resource_handle_val": 14,
                "variant_val": 15,
                "uint32_val": 16,
                "uint64_val": 17,
                "float8_val": 18,
            },
        ),
        (get_model_status_pb2.ModelVersionStatus, {"version": 1, "state": 2, "status": 3}),
        (
            model_server_config_pb2.ModelConfig,
            {
                "name": 1,
                "base_path": 2,
                "model_type": 3,
                "model_platform": 4,
                "logging_config": 6,
                "model_version_policy": 7,
                "version_labels": 8,
            },
        ),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_field_numbers_are_tf_servings(message: type, numbers: dict[str, int]) -> None:
    fields = {f.name: f.number for f in message.DESCRIPTOR.fields}  # type: ignore[attr-defined]
    assert fields == numbers


def test_unknown_fields_survive_a_parse() -> None:
    # A newer server may send fields we do not define (e.g. PredictRequest.request_options = 7).
    base = predict_pb2.PredictRequest()
    base.model_spec.name = "m"
    extra = b"\x3a\x02\x08\x01"  # field 7, length-delimited, 2 bytes
    parsed = predict_pb2.PredictRequest.FromString(base.SerializeToString() + extra)
    assert parsed.model_spec.name == "m"
    assert parsed.SerializeToString().endswith(extra)


def test_grpc_method_paths_are_tf_servings() -> None:
    assert _grpc_methods.PREDICT == "/tensorflow.serving.PredictionService/Predict"
    assert _grpc_methods.GET_MODEL_STATUS == "/tensorflow.serving.ModelService/GetModelStatus"
    assert (
        _grpc_methods.HANDLE_RELOAD_CONFIG
        == "/tensorflow.serving.ModelService/HandleReloadConfigRequest"
    )
    assert _grpc_methods.SIGNATURE_DEF_MAP_TYPE_URL.endswith("/tensorflow.serving.SignatureDefMap")
