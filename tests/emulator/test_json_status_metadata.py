"""REST JSON of GetModelStatus and GetModelMetadata (SPEC §2.7), checked against the
metadata documents TF Serving's own tests expect for its test SavedModels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tfs_async._proto import (
    error_codes_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    meta_graph_pb2,
)
from tfs_async.errors import StatusCode
from tfs_async.testing import rest_json
from tfs_async.testing.status import ServingStatus

SIGNATURE_DEF_MAP_URL = "type.googleapis.com/tensorflow.serving.SignatureDefMap"


def metadata_response(
    saved_model_pb: Path, name: str, version: int
) -> get_model_metadata_pb2.GetModelMetadataResponse:
    saved_model = meta_graph_pb2.SavedModel.FromString(saved_model_pb.read_bytes())
    (graph,) = [g for g in saved_model.meta_graphs if "serve" in g.meta_info_def.tags]
    signatures = get_model_metadata_pb2.SignatureDefMap()
    for key, signature in graph.signature_def.items():
        signatures.signature_def[key].CopyFrom(signature)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = name
    response.model_spec.version.value = version
    packed = response.metadata["signature_def"]
    packed.type_url = SIGNATURE_DEF_MAP_URL
    packed.value = signatures.SerializeToString()
    return response


@pytest.mark.parametrize(
    ("model_dir", "name", "expected_file"),
    [
        ("saved_model_half_plus_two_cpu", "default", "half_plus_two_model_metadata.json"),
        (
            "saved_model_half_plus_two_2_versions",
            "saved_model_half_plus_two_2_versions",
            "saved_model_half_plus_two_2_versions_metadata.json",
        ),
    ],
)
def test_metadata_matches_tf_serving(
    models_dir: Path, model_dir: str, name: str, expected_file: str
) -> None:
    response = metadata_response(models_dir / model_dir / "00000123" / "saved_model.pb", name, 123)
    actual = json.loads(rest_json.metadata_to_json(response))
    expected = json.loads((models_dir / expected_file).read_text())
    assert actual == expected
    # The shapes TF Serving's clients rely on: int64 as strings, snake_case names.
    default = actual["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert default["method_name"] == "tensorflow/serving/predict"
    assert actual["model_spec"]["version"] == "123"


def _without_defaults(document: dict[str, Any]) -> dict[str, Any]:
    signature_defs = document["metadata"]["signature_def"]["signature_def"]
    for signature in signature_defs.values():
        signature.pop("defaults", None)
    return document


def test_metadata_matches_tf2_document_except_defaults(models_dir: Path) -> None:
    """The TF2 document is stale test data no TF Serving test reads: it shows
    ``"defaults": {}`` where this SavedModel has a default for ``x``, and omits the
    (always printed) empty ``defaults`` of ``__saved_model_init_op``. Everything else
    must match; ``defaults`` must be what saved_model.pb holds."""
    path = models_dir / "saved_model_half_plus_two_tf2_cpu" / "00000123" / "saved_model.pb"
    response = metadata_response(path, "saved_model_half_plus_two_2_versions", 123)
    actual = json.loads(rest_json.metadata_to_json(response))
    expected = json.loads(
        (models_dir / "saved_model_half_plus_two_tf2_2_versions_metadata.json").read_text()
    )
    defaults = actual["metadata"]["signature_def"]["signature_def"]["serving_default"]["defaults"]
    assert defaults["x"]["float_val"] == [0.0]
    assert defaults["x"]["tensor_shape"] == {
        "dim": [{"size": "1", "name": ""}],
        "unknown_rank": False,
    }
    assert _without_defaults(actual) == _without_defaults(expected)


def test_metadata_with_label_and_signature_name(models_dir: Path) -> None:
    path = models_dir / "saved_model_half_plus_two_cpu" / "00000123" / "saved_model.pb"
    response = metadata_response(path, "m", 123)
    response.model_spec.ClearField("version")
    response.model_spec.version_label = "stable"
    response.model_spec.signature_name = "sig"
    spec = json.loads(rest_json.metadata_to_json(response))["model_spec"]
    assert spec == {"name": "m", "version_label": "stable", "signature_name": "sig"}


def test_metadata_without_signature_def_is_internal() -> None:
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = "m"
    with pytest.raises(ServingStatus) as info:
        rest_json.metadata_to_json(response)
    assert info.value.code == StatusCode.INTERNAL
    assert "Failed to find 'signature_def' key" in info.value.message


def test_metadata_with_foreign_any_is_internal() -> None:
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.metadata["signature_def"].type_url = "type.googleapis.com/some.Other"
    with pytest.raises(ServingStatus) as info:
        rest_json.metadata_to_json(response)
    assert info.value.code == StatusCode.INTERNAL
    assert info.value.message == "Failed to unpack 'Any' object to 'SignatureDefMap'."


def test_status_matches_tf_serving_example() -> None:
    response = get_model_status_pb2.GetModelStatusResponse()
    status = response.model_version_status.add(version=123, state=30)
    status.status.error_code = error_codes_pb2.OK
    assert json.loads(rest_json.status_to_json(response)) == {
        "model_version_status": [
            {
                "version": "123",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }


def test_status_lists_versions_newest_first_with_failures() -> None:
    response = get_model_status_pb2.GetModelStatusResponse()
    response.model_version_status.add(version=1, state=30)
    failed = response.model_version_status.add(version=3, state=50)
    failed.status.error_code = error_codes_pb2.NOT_FOUND
    failed.status.error_message = "Could not find base path"
    response.model_version_status.add(version=2, state=20)
    statuses = json.loads(rest_json.status_to_json(response))["model_version_status"]
    assert [s["version"] for s in statuses] == ["3", "2", "1"]
    assert [s["state"] for s in statuses] == ["END", "LOADING", "AVAILABLE"]
    assert statuses[0]["status"] == {
        "error_code": "NOT_FOUND",
        "error_message": "Could not find base path",
    }
    # Healthy versions still print an OK status, as TF Serving fills it.
    assert statuses[1]["status"] == {"error_code": "OK", "error_message": ""}
