"""The same server condition raises the same error class over gRPC and REST."""

from __future__ import annotations

import re
import socket
from typing import Any

import numpy as np
import pytest

from tests.support import reference as tfs_reference
from tests.support.client import STEP, target_of
from tfs_async.client import Client
from tfs_async.errors import (
    ConnectionFailedError,
    FailedPreconditionError,
    InvalidArgumentError,
    InvalidInputError,
    NotFoundError,
    ResourceExhaustedError,
    StatusCode,
    TFServingError,
    UnavailableError,
)
from tfs_async.testing import Fault, ModelServer

X = {"x": np.array([1.0], np.float32)}

CONDITIONS: list[tuple[str, dict[str, Any], type[TFServingError], str]] = [
    ("unknown_model", {"model": "nope"}, NotFoundError, "Servable not found"),
    ("unknown_version", {"version": 7}, NotFoundError, "Specific(double, 7)"),
    ("bad_label", {"label": "nope"}, InvalidArgumentError, "version label: nope"),
    ("bad_input", {"inputs": {"z": np.array([1.0], np.float32)}}, InvalidArgumentError, "input"),
    ("unknown_signature", {"signature": "nope"}, FailedPreconditionError, '"nope" not found'),
]


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [c[1:] for c in CONDITIONS],
    ids=[c[0] for c in CONDITIONS],
)
async def test_same_error_class_for_the_same_condition(
    server: ModelServer,
    kwargs: dict[str, Any],
    error: type[TFServingError],
    text: str,
) -> None:
    raised: dict[str, TFServingError] = {}
    for protocol in ("grpc", "http"):
        async with Client(target_of(server, protocol), timeout=STEP, max_retries=0) as client:
            call = dict(kwargs)
            model = call.pop("model", "double")
            inputs = call.pop("inputs", X)
            with pytest.raises(error, match=re.escape(text)) as info:
                await client.predict(model, inputs, **call)
            raised[protocol] = info.value
    assert type(raised["grpc"]) is type(raised["http"])
    assert raised["grpc"].code == raised["http"].code
    assert raised["http"].http_status is not None
    assert raised["grpc"].model is not None
    assert raised["grpc"].model.name == raised["http"].model.name  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (StatusCode.UNAVAILABLE, UnavailableError),
        (StatusCode.RESOURCE_EXHAUSTED, ResourceExhaustedError),
    ],
    ids=["unavailable", "resource_exhausted"],
)
async def test_injected_server_errors(
    server: ModelServer, protocol: str, code: StatusCode, error: type[TFServingError]
) -> None:
    assert server.faults is not None
    server.faults.add(Fault(method="predict", error_rate=1.0, code=code, message="busy"))
    async with Client(target_of(server, protocol), timeout=STEP, max_retries=0) as client:
        await client.metadata("double")
        with pytest.raises(error, match="busy") as info:
            await client.predict("double", X)
    assert type(info.value) is error  # a server's answer, not a connection failure


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("protocol", ["grpc", "http"])
async def test_no_server_is_a_connection_failure(protocol: str) -> None:
    port = _closed_port()
    target = f"grpc://127.0.0.1:{port}" if protocol == "grpc" else f"http://127.0.0.1:{port}"
    # Failing fast (by default a call waits for a server until its deadline).
    async with Client(target, timeout=STEP, max_retries=0, wait_for_ready=False) as client:
        with pytest.raises(ConnectionFailedError):
            await client.status("double")


async def test_dropped_connection_is_a_connection_failure(
    server: ModelServer, protocol: str
) -> None:
    assert server.faults is not None
    server.faults.add(Fault(method="get_model_status", drop_rate=1.0))
    async with Client(target_of(server, protocol), timeout=STEP, max_retries=0) as client:
        with pytest.raises(UnavailableError):
            await client.status("double")


_OVERFLOW = [
    c
    for c in tfs_reference.load_vectors("path_parse")
    if c["expected"].get("message_contains") == "Failed to convert version"
]


@pytest.mark.parametrize("case", _OVERFLOW, ids=[c["id"] for c in _OVERFLOW])
async def test_out_of_range_version_is_refused_before_sending(
    server: ModelServer, protocol: str, case: dict[str, Any]
) -> None:
    version = int(case["input"]["path"].split("/versions/")[1].split(":")[0])
    async with Client(target_of(server, protocol), timeout=STEP) as client:
        for bad in (version, -1):
            with pytest.raises(InvalidInputError, match="out of range") as info:
                await client.predict("double", X, version=bad)
            assert info.value.code.name == case["expected"]["status"]
