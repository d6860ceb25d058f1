"""SavedModel directories read without TensorFlow: versions, signatures, metadata, bindings."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from google.protobuf import json_format

from tests.support.serving import STEP, predict_request, raises
from tfs_async._proto import get_model_metadata_pb2
from tfs_async.config import model_config, model_server_config
from tfs_async.errors import StatusCode
from tfs_async.testing.reference_models import half_plus_two_functions
from tfs_async.testing.saved_model import (
    SavedModel,
    list_versions,
    read_signature_defs,
    tensorflow_available,
)
from tfs_async.testing.serving import ServerCore
from tfs_async.testing.status import ServingStatus

METADATA_FILES = [
    ("saved_model_half_plus_two_2_versions", "saved_model_half_plus_two_2_versions_metadata.json"),
    ("saved_model_half_plus_two_cpu", "half_plus_two_model_metadata.json"),
]


def test_versions_are_numeric_directories(models_dir: Path) -> None:
    assert list_versions(models_dir / "saved_model_half_plus_two_2_versions") == [123, 124]
    with pytest.raises(ServingStatus) as info:
        list_versions(models_dir / "no_such_model")
    assert info.value.code == StatusCode.NOT_FOUND


def test_reads_serve_signatures(models_dir: Path) -> None:
    defs = read_signature_defs(models_dir / "saved_model_half_plus_two_cpu" / "00000123")
    assert set(defs) == {
        "serving_default",
        "classify_x_to_y",
        "regress_x_to_y",
        "regress_x_to_y2",
        "regress_x2_to_y3",
    }
    assert defs["serving_default"].inputs["x"].name == "x:0"
    assert defs["classify_x_to_y"].method_name == "tensorflow/serving/classify"
    with pytest.raises(ServingStatus, match="tags"):
        read_signature_defs(models_dir / "saved_model_half_plus_two_cpu" / "00000123", tags=["gpu"])


def test_missing_saved_model_pb_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ServingStatus, match="Could not find SavedModel"):
        read_signature_defs(tmp_path)


@pytest.mark.parametrize(
    ("model_dir", "metadata_file"), METADATA_FILES, ids=[m[1] for m in METADATA_FILES]
)
async def test_metadata_equals_tf_servings_expected_json(
    models_dir: Path, model_dir: str, metadata_file: str
) -> None:
    expected = json.loads((models_dir / metadata_file).read_text())
    name = expected["model_spec"]["name"]
    config = model_server_config(
        [model_config(name, str(models_dir / model_dir), all_versions=True)]
    )
    core = ServerCore(config=config)
    await asyncio.wait_for(core.start(), STEP)
    try:
        req = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        req.model_spec.name = name
        req.model_spec.version.value = int(expected["model_spec"]["version"])
        resp = await asyncio.wait_for(core.get_model_metadata(req), STEP)
        assert resp.model_spec.version.value == int(expected["model_spec"]["version"])
        sig_map = get_model_metadata_pb2.SignatureDefMap.FromString(
            resp.metadata["signature_def"].value
        )
        doc = json_format.MessageToDict(
            sig_map, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )
        assert doc == expected["metadata"]["signature_def"]
    finally:
        await core.stop()


def _example_batch(*xs: float) -> np.ndarray[Any, Any]:
    from tfs_async._proto import example_pb2

    out = []
    for x in xs:
        ex = example_pb2.Example()
        ex.features.feature["x"].float_list.value.append(x)
        ex.features.feature["x2"].float_list.value.append(x * 100)
        out.append(ex.SerializeToString())
    return np.array(out, dtype=object)


def test_reference_functions_compute_what_tensorflow_computed() -> None:
    fns = half_plus_two_functions()
    x = np.array([[2.0], [4.0]], dtype=np.float32)
    examples = _example_batch(2.0, 4.0)
    assert fns["serving_default"]({"x": x})["y"].tolist() == [[3.0], [4.0]]
    assert fns["classify_x_to_y"]({"inputs": examples})["scores"].tolist() == [[3.0], [4.0]]
    assert fns["regress_x_to_y"]({"inputs": examples})["outputs"].tolist() == [[3.0], [4.0]]
    # regress_x_to_y2 reads feature "x", not "x2" (x2 is 100x here and is ignored).
    assert fns["regress_x_to_y2"]({"inputs": examples})["outputs"].tolist() == [[4.0], [5.0]]
    assert fns["regress_x2_to_y3"]({"inputs": x})["outputs"].tolist() == [[4.0], [5.0]]
    assert fns["classify_x2_to_y3"]({"inputs": x})["scores"].tolist() == [[4.0], [5.0]]


async def test_bound_function_overrides_and_unbound_signature_fails_clearly(
    tmp_path: Path, models_dir: Path
) -> None:
    # A copy under another directory name is not recognised as a reference model.
    base = tmp_path / "my_model"
    shutil.copytree(models_dir / "saved_model_half_plus_two_cpu", base)
    double = {"regress_x2_to_y3": lambda t: {"outputs": t["inputs"] * 2}}
    core = ServerCore([SavedModel("mine", base, double)])
    await asyncio.wait_for(core.start(), STEP)
    try:
        req = predict_request("mine", [4.0], signature_name="regress_x2_to_y3")
        req.inputs["inputs"].CopyFrom(req.inputs.pop("x"))
        resp = await asyncio.wait_for(core.predict(req), STEP)
        assert list(resp.outputs["outputs"].float_val) == [8.0]
        if tensorflow_available():
            pytest.skip("TensorFlow is installed here: unbound signatures run on it")
        err = await raises(core.predict(predict_request("mine")))
        assert err.code == StatusCode.FAILED_PRECONDITION
        assert "serving_default" in err.message
        assert "TensorFlow" in err.message
    finally:
        await core.stop()


async def test_version_directory_removed_before_load_fails_the_version(
    tmp_path: Path, models_dir: Path
) -> None:
    base = tmp_path / "saved_model_half_plus_two_2_versions"
    shutil.copytree(models_dir / "saved_model_half_plus_two_2_versions", base)
    (base / "00000124" / "saved_model.pb").unlink()
    core = ServerCore([SavedModel("m", base)])
    await asyncio.wait_for(core.start(), STEP)
    try:
        from tests.support.serving import call_status
        from tfs_async.types import VersionState

        assert await call_status(core, "m") == [(124, VersionState.END)]
        err = await raises(core.predict(predict_request("m")))
        assert err.message == "Servable not found for request: Latest(m)"
    finally:
        await core.stop()
