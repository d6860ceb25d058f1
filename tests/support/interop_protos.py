"""Pairs of our protobuf classes with Google's, and random messages for both.

Random messages are drawn as a *spec* (field name -> value, nested dicts for
messages, lists for repeated fields, dicts for maps) by walking a descriptor.
The same spec then fills our class and Google's class, so a test can compare
what each side writes and reads. Importing this module imports Google's
packages, which fails (never skips) when they are missing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar, cast

import tensorflow  # noqa: F401  (registers TF's core protos in the default pool)
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.unknown_fields import (  # type: ignore[import-not-found, unused-ignore]
    UnknownFieldSet,
)
from hypothesis import strategies as st
from tensorflow.core.example import example_pb2 as _g_example  # noqa: F401
from tensorflow.core.framework import tensor_pb2 as _g_tensor  # noqa: F401
from tensorflow.core.protobuf import error_codes_pb2 as _g_error_codes  # noqa: F401
from tensorflow.core.protobuf import meta_graph_pb2 as _g_meta_graph  # noqa: F401
from tensorflow.core.protobuf import saved_model_pb2 as _g_saved_model  # noqa: F401
from tensorflow_serving.apis import classification_pb2 as _g_classification  # noqa: F401
from tensorflow_serving.apis import get_model_metadata_pb2 as _g_metadata  # noqa: F401
from tensorflow_serving.apis import get_model_status_pb2 as _g_status  # noqa: F401
from tensorflow_serving.apis import inference_pb2 as _g_inference  # noqa: F401
from tensorflow_serving.apis import model_management_pb2 as _g_management  # noqa: F401
from tensorflow_serving.apis import predict_pb2 as _g_predict  # noqa: F401
from tensorflow_serving.apis import regression_pb2 as _g_regression  # noqa: F401
from tensorflow_serving.config import model_server_config_pb2 as _g_config  # noqa: F401

from tfs_async._proto import (
    classification_pb2,
    error_codes_pb2,
    example_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    input_pb2,
    meta_graph_pb2,
    model_management_pb2,
    model_pb2,
    model_server_config_pb2,
    predict_pb2,
    regression_pb2,
    status_pb2,
    tensor_pb2,
    tensor_shape_pb2,
    types_pb2,
)

OUR_MODULES: tuple[ModuleType, ...] = (
    classification_pb2,
    error_codes_pb2,
    example_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    input_pb2,
    meta_graph_pb2,
    model_management_pb2,
    model_pb2,
    model_server_config_pb2,
    predict_pb2,
    regression_pb2,
    status_pb2,
    tensor_pb2,
    tensor_shape_pb2,
    types_pb2,
)

OUR_PREFIX = "tfs_async."
GOOGLE_POOL: Any = descriptor_pool.Default()  # type: ignore[no-untyped-call, unused-ignore]

# types-protobuf splits descriptors between the pure-Python and upb classes; either will do.
Descriptor = Any
EnumDescriptor = Any
Field = Any
M = TypeVar("M", bound=Message)

# The messages the SDK sends or reads, top-level first; nested ones are covered through them.
WIRE_MESSAGES: tuple[type[Message], ...] = (
    predict_pb2.PredictRequest,
    predict_pb2.PredictResponse,
    classification_pb2.ClassificationRequest,
    classification_pb2.ClassificationResponse,
    regression_pb2.RegressionRequest,
    regression_pb2.RegressionResponse,
    inference_pb2.MultiInferenceRequest,
    inference_pb2.MultiInferenceResponse,
    get_model_metadata_pb2.GetModelMetadataRequest,
    get_model_metadata_pb2.GetModelMetadataResponse,
    get_model_metadata_pb2.SignatureDefMap,
    get_model_status_pb2.GetModelStatusRequest,
    get_model_status_pb2.GetModelStatusResponse,
    model_management_pb2.ReloadConfigRequest,
    model_management_pb2.ReloadConfigResponse,
    model_server_config_pb2.ModelServerConfig,
    tensor_pb2.TensorProto,
    tensor_shape_pb2.TensorShapeProto,
    example_pb2.Example,
    input_pb2.Input,
    meta_graph_pb2.SavedModel,
    meta_graph_pb2.MetaGraphDef,
    meta_graph_pb2.SignatureDef,
    meta_graph_pb2.TensorInfo,
    model_pb2.ModelSpec,
    status_pb2.StatusProto,
)


def google_name(our_full_name: str) -> str:
    """Google's full name for one of our types (our package only adds a prefix)."""
    assert our_full_name.startswith(OUR_PREFIX), our_full_name
    return our_full_name[len(OUR_PREFIX) :]


def google_descriptor(ours: Descriptor) -> Descriptor:
    """Google's descriptor for the message type ``ours`` mirrors."""
    return cast(Descriptor, GOOGLE_POOL.FindMessageTypeByName(google_name(ours.full_name)))


def google_enum(ours: EnumDescriptor) -> EnumDescriptor:
    """Google's descriptor for the enum type ``ours`` mirrors."""
    return cast(EnumDescriptor, GOOGLE_POOL.FindEnumTypeByName(google_name(ours.full_name)))


def google_class(ours: type[Message]) -> type[Message]:
    """Google's generated class for the message ``ours`` mirrors."""
    return message_factory.GetMessageClass(google_descriptor(ours.DESCRIPTOR))


def all_messages() -> Iterator[Descriptor]:
    """Every message type we define, nested ones included (map entries too)."""

    def walk(descriptor: Descriptor) -> Iterator[Descriptor]:
        yield descriptor
        for nested in descriptor.nested_types:
            yield from walk(nested)

    for module in OUR_MODULES:
        for descriptor in module.DESCRIPTOR.message_types_by_name.values():
            yield from walk(descriptor)


def all_enums() -> Iterator[EnumDescriptor]:
    """Every enum type we define, nested ones included."""
    for module in OUR_MODULES:
        yield from module.DESCRIPTOR.enum_types_by_name.values()
    for descriptor in all_messages():
        yield from descriptor.enum_types


# ---------------------------------------------------------------- random messages

_SCALARS: dict[int, st.SearchStrategy[Any]] = {
    FieldDescriptor.TYPE_DOUBLE: st.floats(),
    FieldDescriptor.TYPE_FLOAT: st.floats(width=32),
    FieldDescriptor.TYPE_INT64: st.integers(-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: st.integers(-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: st.integers(-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: st.integers(0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: st.integers(0, 2**64 - 1),
    FieldDescriptor.TYPE_INT32: st.integers(-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: st.integers(-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: st.integers(-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: st.integers(0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: st.integers(0, 2**32 - 1),
    FieldDescriptor.TYPE_BOOL: st.booleans(),
    FieldDescriptor.TYPE_STRING: st.text(max_size=8),
    FieldDescriptor.TYPE_BYTES: st.binary(max_size=12),
}
MAX_LIST = 3


def _is_map(field: Field) -> bool:
    message_type = field.message_type
    return message_type is not None and message_type.GetOptions().map_entry


@dataclass(frozen=True)
class _Draw:
    """How deep specs nest, and whether floats stay finite (text formats lose NaN payloads)."""

    max_depth: int
    finite: bool


def _single(field: Field, depth: int, how: _Draw) -> st.SearchStrategy[Any]:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return _message(field.message_type, depth + 1, how)
    if field.type == FieldDescriptor.TYPE_ENUM:
        return st.sampled_from([value.number for value in field.enum_type.values])
    if how.finite and field.type == FieldDescriptor.TYPE_DOUBLE:
        return st.floats(allow_nan=False)
    if how.finite and field.type == FieldDescriptor.TYPE_FLOAT:
        return st.floats(width=32, allow_nan=False)
    return _SCALARS[field.type]


def _value(field: Field, depth: int, how: _Draw) -> st.SearchStrategy[Any]:
    if _is_map(field):
        entry = field.message_type
        keys = _single(entry.fields_by_name["key"], depth, how)
        values = _single(entry.fields_by_name["value"], depth, how)
        return st.dictionaries(keys, values, max_size=MAX_LIST)
    if field.is_repeated:
        return st.lists(_single(field, depth, how), max_size=MAX_LIST)
    return _single(field, depth, how)


def _message(descriptor: Descriptor, depth: int, how: _Draw) -> st.SearchStrategy[dict[str, Any]]:
    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        spec: dict[str, Any] = {}
        if depth >= how.max_depth:
            return spec
        for oneof in descriptor.oneofs:
            chosen = draw(st.none() | st.sampled_from(list(oneof.fields)))
            if chosen is not None:
                spec[chosen.name] = draw(_value(chosen, depth, how))
        for field in descriptor.fields:
            if field.containing_oneof is None and draw(st.booleans()):
                spec[field.name] = draw(_value(field, depth, how))
        return spec

    return build()


def message_specs(
    descriptor: Descriptor, *, max_depth: int = 8, finite: bool = False
) -> st.SearchStrategy[dict[str, Any]]:
    """Specs of ``descriptor``: any field may be set, at most one member per oneof.

    ``max_depth`` bounds message nesting (Google's protos have recursive types);
    ``finite`` keeps NaN out of float fields, for text formats that cannot carry
    a NaN's payload bits.
    """
    return _message(descriptor, 0, _Draw(max_depth=max_depth, finite=finite))


def fill(message: M, spec: dict[str, Any]) -> M:
    """Set ``spec``'s fields on ``message`` by name (works for ours and Google's alike)."""
    for name, value in spec.items():
        field: Field = message.DESCRIPTOR.fields_by_name[name]
        target = getattr(message, name)
        if _is_map(field):
            value_field = field.message_type.fields_by_name["value"]
            for key, item in value.items():
                if value_field.type == FieldDescriptor.TYPE_MESSAGE:
                    fill(target[key], item)
                else:
                    target[key] = item
        elif field.is_repeated:
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                for item in value:
                    fill(target.add(), item)
            else:
                target.extend(value)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            target.SetInParent()
            fill(target, value)
        else:
            setattr(message, name, value)
    return message


def wire(message: Message) -> bytes:
    """Deterministic serialization (map entries sorted), comparable byte for byte."""
    return message.SerializeToString(deterministic=True)


def unknown_field_count(message: Message) -> int:
    """How many unknown fields ``message`` holds, nested messages included."""
    count = len(UnknownFieldSet(message))
    fields: Sequence[tuple[Field, Any]] = message.ListFields()
    for field, value in fields:
        if field.type != FieldDescriptor.TYPE_MESSAGE:
            continue
        if _is_map(field):
            value_field = field.message_type.fields_by_name["value"]
            if value_field.type == FieldDescriptor.TYPE_MESSAGE:
                count += sum(unknown_field_count(item) for item in value.values())
        elif field.is_repeated:
            count += sum(unknown_field_count(item) for item in value)
        else:
            count += unknown_field_count(value)
    return count
