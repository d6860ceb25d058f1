"""Our protobuf messages against Google's: same descriptors, same bytes, both ways.

Properties (hypothesis): a random message, set field by field through our class
and through Google's, serializes to the same bytes; our bytes parse in Google's
class to the equal message and Google's bytes in ours. Fields Google defines and
we leave out survive a trip through our classes as unknown fields.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from google.protobuf import any_pb2, text_format
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorflow.core.protobuf import saved_model_pb2 as g_saved_model
from tensorflow_serving.apis import get_model_metadata_pb2 as g_metadata
from tensorflow_serving.apis import model_management_pb2 as g_management
from tensorflow_serving.apis import predict_pb2 as g_predict
from tensorflow_serving.config import model_server_config_pb2 as g_config

from tests.support import reference as tfs_reference
from tests.support.interop_protos import (
    WIRE_MESSAGES,
    all_enums,
    all_messages,
    fill,
    google_class,
    google_descriptor,
    google_enum,
    google_name,
    message_specs,
    unknown_field_count,
    wire,
)
from tfs_async._grpc_methods import SIGNATURE_DEF_MAP_TYPE_URL
from tfs_async._proto import (
    get_model_metadata_pb2,
    meta_graph_pb2,
    model_management_pb2,
    model_server_config_pb2,
    predict_pb2,
    tensor_pb2,
)
from tfs_async.codec.messages import pack_signature_def_map, unpack_signature_def_map
from tfs_async.config import ConfigError, format_model_server_config, parse_model_server_config

pytestmark = pytest.mark.interop

PROPERTY = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _type_name(full_name: str) -> str:
    """A referenced type's name as Google spells it (well-known types are shared)."""
    return full_name if full_name.startswith("google.protobuf.") else google_name(full_name)


def _field_shape(field: FieldDescriptor, *, ours: bool) -> dict[str, Any]:
    """What must agree between our field and Google's, in Google's spelling."""
    rename = _type_name if ours else (lambda name: name)
    return {
        "number": field.number,
        "type": field.type,
        "repeated": field.is_repeated,
        "packed": field.is_packed,
        "presence": field.has_presence,
        "json_name": getattr(field, "json_name"),  # noqa: B009  (missing from the stubs)
        "oneof": field.containing_oneof.name if field.containing_oneof else None,
        "message": rename(field.message_type.full_name) if field.message_type else None,
        "enum": rename(field.enum_type.full_name) if field.enum_type else None,
    }


@pytest.mark.parametrize("ours", list(all_messages()), ids=lambda d: google_name(d.full_name))
def test_every_field_we_define_matches_google(ours: Descriptor) -> None:
    theirs = google_descriptor(ours)
    assert ours.GetOptions().map_entry == theirs.GetOptions().map_entry
    for field in ours.fields:
        assert field.name in theirs.fields_by_name, f"{theirs.full_name} has no {field.name}"
        got = _field_shape(field, ours=True)
        want = _field_shape(theirs.fields_by_name[field.name], ours=False)
        assert got == want, f"{theirs.full_name}.{field.name}"


@pytest.mark.parametrize("ours", list(all_enums()), ids=lambda e: google_name(e.full_name))
def test_every_enum_value_we_define_matches_google(ours: EnumDescriptor) -> None:
    theirs = google_enum(ours)
    ours_values = {value.name: value.number for value in ours.values}
    theirs_values = {value.name: value.number for value in theirs.values}
    assert ours_values.items() <= theirs_values.items()
    # Every value Google defines is one we can name too (nothing decodes as a bare number).
    assert set(theirs_values) <= set(ours_values) | _ENUM_VALUES_WE_OMIT.get(
        theirs.full_name, set()
    )


# Values Google has that we deliberately leave out (none today: keep it that way).
_ENUM_VALUES_WE_OMIT: dict[str, set[str]] = {}


@pytest.mark.parametrize("ours_class", WIRE_MESSAGES, ids=lambda c: c.DESCRIPTOR.name)
@PROPERTY
@given(data=st.data())
def test_same_message_same_bytes_both_ways(ours_class: type[Message], data: st.DataObject) -> None:
    theirs_class = google_class(ours_class)
    spec = data.draw(message_specs(ours_class.DESCRIPTOR), label="spec")
    ours = fill(ours_class(), spec)
    theirs = fill(theirs_class(), spec)
    # Set by name through either class, the bytes are the same...
    assert wire(ours) == wire(theirs)
    # ...our bytes parse in Google's class to the message Google built, and the reverse.
    assert wire(theirs_class.FromString(ours.SerializeToString())) == wire(theirs)
    assert wire(ours_class.FromString(theirs.SerializeToString())) == wire(ours)
    assert unknown_field_count(ours_class.FromString(theirs.SerializeToString())) == 0
    assert unknown_field_count(theirs_class.FromString(ours.SerializeToString())) == 0


# Google's messages with the fields we leave out (request options, graph defs, ...).
_GOOGLE_ONLY_FIELDS: tuple[type[Message], ...] = (
    predict_pb2.PredictRequest,
    predict_pb2.PredictResponse,
    tensor_pb2.TensorProto,
    meta_graph_pb2.SignatureDef,
    get_model_metadata_pb2.GetModelMetadataResponse,
    model_server_config_pb2.ModelServerConfig,
    model_management_pb2.ReloadConfigRequest,
)


@pytest.mark.parametrize("ours_class", _GOOGLE_ONLY_FIELDS, ids=lambda c: c.DESCRIPTOR.name)
@PROPERTY
@given(data=st.data())
def test_fields_we_do_not_define_survive_our_classes(
    ours_class: type[Message], data: st.DataObject
) -> None:
    theirs_class = google_class(ours_class)
    spec = data.draw(message_specs(theirs_class.DESCRIPTOR, max_depth=4), label="spec")
    theirs = fill(theirs_class(), spec)
    through_ours = ours_class.FromString(theirs.SerializeToString()).SerializeToString()
    assert wire(theirs_class.FromString(through_ours)) == wire(theirs)


def test_a_google_only_field_is_really_exercised() -> None:
    """The survival property above means something: PredictRequest has fields we omit."""
    theirs = g_predict.PredictRequest(client_id=b"abc")
    theirs.request_options.max_cache_length = 7
    ours = predict_pb2.PredictRequest.FromString(theirs.SerializeToString())
    assert unknown_field_count(ours) == 2
    assert g_predict.PredictRequest.FromString(ours.SerializeToString()) == theirs


# ---------------------------------------------------------------- the metadata Any


@PROPERTY
@given(spec=message_specs(get_model_metadata_pb2.SignatureDefMap.DESCRIPTOR))
def test_signature_def_map_any_unpacks_in_google_classes(spec: dict[str, Any]) -> None:
    ours_map = fill(get_model_metadata_pb2.SignatureDefMap(), spec)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = "m"
    packed = response.metadata["signature_def"]
    packed.type_url = SIGNATURE_DEF_MAP_TYPE_URL
    packed.value = ours_map.SerializeToString()

    theirs = g_metadata.GetModelMetadataResponse.FromString(response.SerializeToString())
    unpacked = g_metadata.SignatureDefMap()
    assert theirs.metadata["signature_def"].Unpack(unpacked)
    assert wire(unpacked) == wire(fill(g_metadata.SignatureDefMap(), spec))


@PROPERTY
@given(spec=message_specs(get_model_metadata_pb2.SignatureDefMap.DESCRIPTOR))
def test_google_packed_any_reads_with_our_type_url(spec: dict[str, Any]) -> None:
    theirs = g_metadata.GetModelMetadataResponse()
    theirs.metadata["signature_def"].Pack(fill(g_metadata.SignatureDefMap(), spec))
    ours = get_model_metadata_pb2.GetModelMetadataResponse.FromString(theirs.SerializeToString())
    packed = ours.metadata["signature_def"]
    assert packed.type_url == SIGNATURE_DEF_MAP_TYPE_URL
    ours_map = get_model_metadata_pb2.SignatureDefMap.FromString(packed.value)
    assert wire(ours_map) == wire(fill(get_model_metadata_pb2.SignatureDefMap(), spec))


# ---------------------------------------------------------------- models.config text

MODELS_CONFIG = """
model_config_list {
  config {
    name: 'din' base_path: '/models/din' model_platform: 'tensorflow'
    model_version_policy { specific { versions: 100000 versions: 100001 } }
    version_labels { key: 'canary' value: 100000 }
    version_labels { key: 'stable' value: 100001 }
  }
  config {
    name: "half_plus_two"
    base_path: "/models/half_plus_two"
    model_platform: "tensorflow"
    model_version_policy { latest { num_versions: 2 } }
  }
  config { name: "all" base_path: "/models/all" model_version_policy { all {} } }
}
"""


def test_models_config_text_parses_the_same_in_both() -> None:
    ours = text_format.Parse(MODELS_CONFIG, model_server_config_pb2.ModelServerConfig())
    theirs = text_format.Parse(MODELS_CONFIG, g_config.ModelServerConfig())
    assert wire(ours) == wire(theirs)
    assert len(ours.model_config_list.config) == 3
    assert dict(ours.model_config_list.config[0].version_labels) == {
        "canary": 100000,
        "stable": 100001,
    }

    request = model_management_pb2.ReloadConfigRequest(config=ours)
    parsed = g_management.ReloadConfigRequest.FromString(request.SerializeToString())
    assert parsed.config == theirs
    assert parsed.config.model_config_list.config[1].model_version_policy.latest.num_versions == 2


@PROPERTY
@given(spec=message_specs(model_server_config_pb2.ModelServerConfig.DESCRIPTOR, finite=True))
def test_models_config_text_written_by_us_parses_in_google(spec: dict[str, Any]) -> None:
    ours = fill(model_server_config_pb2.ModelServerConfig(), spec)
    text = text_format.MessageToString(ours)
    theirs = text_format.Parse(text, g_config.ModelServerConfig())
    assert wire(theirs) == wire(ours)
    assert wire(text_format.Parse(text_format.MessageToString(theirs), type(ours)())) == wire(ours)


def test_our_config_parser_reads_models_config_like_google() -> None:
    ours = parse_model_server_config(MODELS_CONFIG)
    theirs = text_format.Parse(MODELS_CONFIG, g_config.ModelServerConfig())
    assert wire(ours) == wire(theirs)


@PROPERTY
@given(spec=message_specs(model_server_config_pb2.ModelServerConfig.DESCRIPTOR, finite=True))
def test_our_config_formatter_writes_what_google_reads(spec: dict[str, Any]) -> None:
    ours = fill(model_server_config_pb2.ModelServerConfig(), spec)
    theirs = text_format.Parse(format_model_server_config(ours), g_config.ModelServerConfig())
    assert wire(theirs) == wire(ours)


@pytest.mark.parametrize(
    "bad",
    [
        "model_config_list { config { nme: 'x' } }",
        "model_config_list {\n  config { name: 'x' base_path: 3 }\n}",
        "model_config_list { config { name: 'x' }",
        "model_config_list { config { model_version_policy { specific { versions: 'a' } } } }",
    ],
    ids=["unknown-field", "wrong-type", "unclosed", "bad-version"],
)
def test_config_errors_read_like_googles_parser(bad: str) -> None:
    with pytest.raises(text_format.ParseError) as google_error:
        text_format.Parse(bad, g_config.ModelServerConfig())
    with pytest.raises(ConfigError) as ours:
        parse_model_server_config(bad)
    assert (ours.value.line, ours.value.column) == (
        google_error.value.GetLine(),
        google_error.value.GetColumn(),
    )
    # Google's message, minus its "line:column : " prefix, with TF's type names.
    assert ours.value.message.endswith(str(google_error.value).split(" : ", 1)[-1])


# ---------------------------------------------------------------- SavedModel files


@pytest.mark.parametrize(
    "saved_model_pb",
    sorted(tfs_reference.models_dir().glob("*/*/saved_model.pb")),
    ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}",
)
def test_real_saved_models_survive_our_reduced_classes(saved_model_pb: Path) -> None:
    data = saved_model_pb.read_bytes()
    theirs = g_saved_model.SavedModel.FromString(data)
    ours = meta_graph_pb2.SavedModel.FromString(data)
    # We keep only what signatures need; the graph, saver, object graph... ride along unknown.
    assert unknown_field_count(ours) > 0
    assert g_saved_model.SavedModel.FromString(ours.SerializeToString()) == theirs
    assert [list(g.meta_info_def.tags) for g in ours.meta_graphs] == [
        list(g.meta_info_def.tags) for g in theirs.meta_graphs
    ]


# ---------------------------------------------------------------- codec helpers


@PROPERTY
@given(spec=message_specs(get_model_metadata_pb2.SignatureDefMap.DESCRIPTOR))
def test_codec_any_helpers_interoperate_with_google(spec: dict[str, Any]) -> None:
    ours_map = fill(get_model_metadata_pb2.SignatureDefMap(), spec)
    theirs_map = fill(g_metadata.SignatureDefMap(), spec)

    unpacked = g_metadata.SignatureDefMap()
    assert any_pb2.Any.FromString(pack_signature_def_map(ours_map).SerializeToString()).Unpack(
        unpacked
    )
    assert wire(unpacked) == wire(theirs_map)

    google_any = any_pb2.Any()
    google_any.Pack(theirs_map)
    assert wire(unpack_signature_def_map(google_any)) == wire(ours_map)
