"""gRPC statuses map onto the one error hierarchy (errors.error_from_grpc)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import grpc
import pytest

from tfs_async.errors import (
    ConnectionFailedError,
    NotFoundError,
    StatusCode,
    UnavailableError,
    error_for_code,
    error_from_grpc,
)
from tfs_async.types import ModelSpec


@dataclass
class _RpcError:
    """What error_from_grpc reads of grpc.aio.AioRpcError: code() and details().

    Not AioRpcError itself: building one outside a channel changes grpc.aio's
    poller thread lifecycle, which the client's thread-leak test would then see.
    """

    status: grpc.StatusCode
    text: str

    def code(self) -> grpc.StatusCode:
        return self.status

    def details(self) -> str:
        return self.text


def _rpc_error(code: grpc.StatusCode, details: str) -> _RpcError:
    return _RpcError(code, details)


@pytest.mark.parametrize("code", [c for c in grpc.StatusCode if c != grpc.StatusCode.OK])
def test_every_grpc_status_gets_the_class_of_its_canonical_code(code: grpc.StatusCode) -> None:
    model = ModelSpec("m")
    error = error_from_grpc(_rpc_error(code, "the server's words"), model=model)
    assert error.code == StatusCode(code.value[0])
    assert type(error) is type(error_for_code(code.value[0], ""))
    assert error.message == "the server's words"
    assert error.model == model
    assert error.http_status is None


def test_channel_failures_are_connection_failures_and_server_answers_are_not() -> None:
    refused = error_from_grpc(
        _rpc_error(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses")
    )
    assert isinstance(refused, ConnectionFailedError)
    busy = error_from_grpc(_rpc_error(grpc.StatusCode.UNAVAILABLE, "model is overloaded"))
    assert type(busy) is UnavailableError
    missing = error_from_grpc(_rpc_error(grpc.StatusCode.NOT_FOUND, "Servable not found"))
    assert isinstance(missing, NotFoundError)


def test_the_error_module_does_not_import_grpc() -> None:
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, tfs_async.errors; print('grpc' in sys.modules)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert probe.stdout.strip() == "False"
