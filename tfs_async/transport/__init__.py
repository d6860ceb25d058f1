"""Transports: how calls reach TF Serving (gRPC or REST), behind one interface.

:class:`Transport` is the seam: implement it to plug in your own. The concrete
transports are imported on first use (``tfs_async.transport.GrpcTransport`` or a
target string naming them), so a gRPC-only program never imports aiohttp and a
REST-only one never imports grpc.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tfs_async.transport.base import CallOptions, Transport

if TYPE_CHECKING:
    from tfs_async.transport.grpc import GrpcTransport as GrpcTransport
    from tfs_async.transport.http import HttpTransport as HttpTransport
    from tfs_async.transport.http_lean import LeanHttpTransport as LeanHttpTransport

__all__ = ["CallOptions", "GrpcTransport", "HttpTransport", "LeanHttpTransport", "Transport"]

_LAZY = {
    "GrpcTransport": "tfs_async.transport.grpc",
    "HttpTransport": "tfs_async.transport.http",
    "LeanHttpTransport": "tfs_async.transport.http_lean",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tfs_async.transport' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
