"""Our reading of TF Serving's test SavedModels (and our own TF1 one) against TensorFlow's.

Three views must agree for every version of every model in the reference set and
for tests/data/tf1_half_plus_three:
our ``read_signature_defs`` (no TensorFlow), TensorFlow's own ``SavedModel``
proto, and the signatures ``tf.saved_model.load`` builds. The metadata JSON the
emulator serves must equal the proto3 JSON of TensorFlow's SignatureDefMap, which
for the TF1 models is exactly TF Serving's expected document.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
import pytest_asyncio
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.protobuf import saved_model_pb2 as g_saved_model
from tensorflow_serving.apis import get_model_metadata_pb2 as g_metadata
from tensorflow_serving.apis import model_pb2 as g_model
from tensorflow_serving.apis import prediction_service_pb2_grpc

from tests.support import reference as tfs_reference
from tests.support.interop_serving import HTTP_TIMEOUT, running
from tests.support.project_data import TF1_HALF_PLUS_THREE
from tfs_async._proto import meta_graph_pb2
from tfs_async.testing import ModelServer
from tfs_async.testing.saved_model import SavedModel, read_signature_defs

pytestmark = pytest.mark.interop

MODELS = tfs_reference.models_dir()
REFERENCE_VERSION_DIRS = sorted(p.parent for p in MODELS.glob("*/*/saved_model.pb"))
VERSION_DIRS = [*REFERENCE_VERSION_DIRS, TF1_HALF_PLUS_THREE / "00000123"]
# TF2 SavedModels carry this pseudo-signature in the proto; tf.saved_model.load hides it.
INIT_OP = "__saved_model_init_op"


def _ids(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def _tf_serve_graph(version_dir: Path) -> Any:
    saved = g_saved_model.SavedModel.FromString((version_dir / "saved_model.pb").read_bytes())
    (graph,) = [g for g in saved.meta_graphs if list(g.meta_info_def.tags) == ["serve"]]
    return graph


def _shape(info: meta_graph_pb2.TensorInfo) -> list[int | None] | None:
    """Our TensorInfo's shape in TensorFlow's terms (None: unknown rank or dim)."""
    if info.tensor_shape.unknown_rank:
        return None
    return [d.size if d.size >= 0 else None for d in info.tensor_shape.dim]


def _tf_shape(shape: tf.TensorShape) -> list[int | None] | None:
    return None if shape.rank is None else shape.as_list()


def test_the_reference_models_and_ours_are_all_here() -> None:
    assert (TF1_HALF_PLUS_THREE / "00000123" / "saved_model.pb").is_file()
    assert [_ids(p) for p in REFERENCE_VERSION_DIRS] == [
        "saved_model_half_plus_two_2_versions/00000123",
        "saved_model_half_plus_two_2_versions/00000124",
        "saved_model_half_plus_two_cpu/00000123",
        "saved_model_half_plus_two_tf2_cpu/00000123",
    ]


@pytest.mark.parametrize("version_dir", VERSION_DIRS, ids=_ids)
def test_our_reader_returns_tensorflows_signature_defs(version_dir: Path) -> None:
    ours = read_signature_defs(version_dir)
    theirs = _tf_serve_graph(version_dir).signature_def
    assert sorted(ours) == sorted(theirs)
    for key, signature in ours.items():
        assert signature.SerializeToString(deterministic=True) == theirs[key].SerializeToString(
            deterministic=True
        ), key


@pytest.mark.parametrize("version_dir", VERSION_DIRS, ids=_ids)
def test_our_signatures_agree_with_tf_saved_model_load(version_dir: Path) -> None:
    ours = read_signature_defs(version_dir)
    if version_dir.parent == TF1_HALF_PLUS_THREE:
        # Like TF Serving's half_plus_three, its signature declares x as [?, 1] over a scalar
        # graph tensor: TF2's loader refuses it, TF Serving's Session path (and ours) serves it.
        with pytest.raises(ValueError, match="rank"):
            tf.saved_model.load(str(version_dir), tags=["serve"])
        return
    loaded = tf.saved_model.load(str(version_dir), tags=["serve"])
    assert set(loaded.signatures) == set(ours) - {INIT_OP}
    for key, function in loaded.signatures.items():
        signature = ours[key]
        tf_inputs = function.structured_input_signature[1]
        assert sorted(tf_inputs) == sorted(signature.inputs), key
        for alias, spec in tf_inputs.items():
            assert spec.dtype.as_datatype_enum == signature.inputs[alias].dtype, (key, alias)
            assert _tf_shape(spec.shape) == _shape(signature.inputs[alias]), (key, alias)
        tf_outputs = function.structured_outputs
        assert sorted(tf_outputs) == sorted(signature.outputs), key
        for alias, tensor in tf_outputs.items():
            assert tensor.dtype.as_datatype_enum == signature.outputs[alias].dtype, (key, alias)
            assert _tf_shape(tensor.shape) == _shape(signature.outputs[alias]), (key, alias)


@pytest.mark.parametrize("version_dir", VERSION_DIRS, ids=_ids)
def test_our_signature_defs_are_what_tfs_v1_loader_returns(version_dir: Path) -> None:
    """TF1's loader (the session path TF Serving itself takes) sees the same SignatureDefs."""
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(version_dir))
    ours = read_signature_defs(version_dir)
    assert sorted(ours) == sorted(meta_graph.signature_def)
    for key, signature in ours.items():
        theirs = meta_graph.signature_def[key]
        assert signature.SerializeToString(deterministic=True) == theirs.SerializeToString(
            deterministic=True
        ), key


def _tf_metadata_document(version_dir: Path, name: str, version: int) -> dict[str, Any]:
    """TF Serving's REST metadata document, rendered from TensorFlow's own protos."""
    options: dict[str, Any] = {
        "preserving_proto_field_name": True,
        "always_print_fields_with_no_presence": True,
    }
    spec = g_model.ModelSpec(name=name)
    spec.version.value = version
    sig_map = g_metadata.SignatureDefMap(signature_def=_tf_serve_graph(version_dir).signature_def)
    return {
        "model_spec": json_format.MessageToDict(spec, **options),
        "metadata": {"signature_def": json_format.MessageToDict(sig_map, **options)},
    }


@pytest.mark.parametrize(
    ("version_dir", "name", "expected_file"),
    [
        (MODELS / "saved_model_half_plus_two_cpu/00000123", "default", "half_plus_two_model"),
        (
            MODELS / "saved_model_half_plus_two_2_versions/00000123",
            "saved_model_half_plus_two_2_versions",
            "saved_model_half_plus_two_2_versions",
        ),
    ],
    ids=["half_plus_two_cpu", "half_plus_two_2_versions"],
)
def test_tf_rendering_is_tf_servings_expected_document(
    version_dir: Path, name: str, expected_file: str
) -> None:
    """Pins the rendering used below: for these models it is TF Serving's own test file."""
    expected = json.loads((MODELS / f"{expected_file}_metadata.json").read_text())
    assert _tf_metadata_document(version_dir, name, 123) == expected


SERVED = {
    "hpt_cpu": MODELS / "saved_model_half_plus_two_cpu",
    "hpt_two": MODELS / "saved_model_half_plus_two_2_versions",
    "hpt_tf2": MODELS / "saved_model_half_plus_two_tf2_cpu",
    "hp3_tf1": TF1_HALF_PLUS_THREE,
}


def _latest_dir(base_path: Path) -> Path:
    return max((p for p in base_path.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def served() -> AsyncIterator[ModelServer]:
    models = [SavedModel(name, path) for name, path in SERVED.items()]
    async with running(ModelServer(models)) as server:
        yield server


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("name", list(SERVED))
async def test_served_metadata_json_equals_tensorflows(served: ModelServer, name: str) -> None:
    version_dir = _latest_dir(SERVED[name])
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:
        url = f"{served.rest_url}/v1/models/{name}/metadata"
        async with session.get(url) as response:
            assert response.status == 200, await response.text()
            assert response.content_type == "application/json"
            document = json.loads(await response.read())
    assert document == _tf_metadata_document(version_dir, name, int(version_dir.name))


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("name", list(SERVED))
async def test_served_grpc_metadata_equals_tensorflows(served: ModelServer, name: str) -> None:
    version_dir = _latest_dir(SERVED[name])
    request = g_metadata.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = name
    async with grpc.aio.insecure_channel(served.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = await stub.GetModelMetadata(request, timeout=30)
    assert response.model_spec.version.value == int(version_dir.name)
    served_map = g_metadata.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(served_map)
    want = g_metadata.SignatureDefMap(signature_def=_tf_serve_graph(version_dir).signature_def)
    assert served_map.SerializeToString(deterministic=True) == want.SerializeToString(
        deterministic=True
    )
