"""ServerCore called directly: helpers shared by the emulator's serving tests."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from tfs_async._proto import get_model_status_pb2, input_pb2, predict_pb2
from tfs_async.codec.tensor import encode_tensor
from tfs_async.testing.models import PythonModel, Signature, signature
from tfs_async.testing.serving import ServerCore
from tfs_async.testing.status import ServingStatus
from tfs_async.types import VersionState

STEP = 10.0


def add_sig(shift: float) -> Signature:
    """serving_default: y = x + shift (float32)."""
    return signature(
        lambda t: {"y": t["x"] + np.float32(shift)},
        inputs={"x": ("DT_FLOAT", [-1])},
        outputs={"y": ("DT_FLOAT", [-1])},
    )


def versioned(name: str, versions: tuple[int, ...]) -> PythonModel:
    """Version v adds v to its input, so answers tell versions apart."""
    return PythonModel(name, versions={v: {"serving_default": add_sig(v)} for v in versions})


def predict_request(
    name: str,
    x: Any = (1.0,),
    *,
    version: int | None = None,
    label: str | None = None,
    signature_name: str = "",
    output_filter: tuple[str, ...] = (),
) -> predict_pb2.PredictRequest:
    req = predict_pb2.PredictRequest(output_filter=list(output_filter))
    req.model_spec.name = name
    req.model_spec.signature_name = signature_name
    if version is not None:
        req.model_spec.version.value = version
    if label is not None:
        req.model_spec.version_label = label
    req.inputs["x"].CopyFrom(encode_tensor(np.asarray(x, dtype=np.float32), name="x"))
    return req


def examples(*values: float, feature: str = "x") -> input_pb2.Input:
    inp = input_pb2.Input()
    for v in values:
        ex = inp.example_list.examples.add()
        ex.features.feature[feature].float_list.value.append(v)
    return inp


async def call_status(core: ServerCore, name: str, version: int | None = None) -> list[Any]:
    req = get_model_status_pb2.GetModelStatusRequest()
    req.model_spec.name = name
    if version is not None:
        req.model_spec.version.value = version
    resp = await asyncio.wait_for(core.get_model_status(req), STEP)
    return [(s.version, VersionState(s.state)) for s in resp.model_version_status]


async def raises(aw: Any) -> ServingStatus:
    with pytest.raises(ServingStatus) as info:
        await asyncio.wait_for(aw, STEP)
    return info.value
