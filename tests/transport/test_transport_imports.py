"""Each transport's library is imported only when a target needs that transport."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tfs_async.transport.target import DEFAULT_HTTP_TRANSPORT

_HTTP_CLASS = {"aiohttp": "HttpTransport", "lean": "LeanHttpTransport"}

_PROBE = """
import sys
import tfs_async
from tfs_async import Client
from tfs_async.transport import CallOptions, Transport
client = Client({target!r})
print(type(client.transport).__name__, ",".join(m for m in ("grpc", "aiohttp") if m in sys.modules))
"""


@pytest.mark.parametrize(
    ("target", "transport", "loaded"),
    [
        ("grpc://127.0.0.1:1", "GrpcTransport", "grpc"),
        ("dns:///127.0.0.1:1", "GrpcTransport", "grpc"),
        # The default HTTP transport (the lean one builds on the aiohttp one's calls).
        ("http://127.0.0.1:1", _HTTP_CLASS[DEFAULT_HTTP_TRANSPORT], "aiohttp"),
    ],
)
def test_a_target_imports_only_its_transports_library(
    target: str, transport: str, loaded: str
) -> None:
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE.format(target=target)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert probe.stdout.split() == [transport, loaded]


def test_importing_the_package_loads_neither_transport() -> None:
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, tfs_async, tfs_async.transport, tfs_async.client;"
            "print([m for m in ('grpc', 'aiohttp') if m in sys.modules])",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert probe.stdout.strip() == "[]"
