"""Transports: how calls reach TF Serving (gRPC or REST), behind one interface.

:class:`Transport` is the seam: implement it to plug in your own.
"""

from __future__ import annotations

from tfs_async.transport.base import CallOptions, Transport
from tfs_async.transport.grpc import GrpcTransport
from tfs_async.transport.http import HttpTransport

__all__ = ["CallOptions", "GrpcTransport", "HttpTransport", "Transport"]
