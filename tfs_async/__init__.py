"""tfs_async: an asyncio client SDK for TensorFlow Serving (gRPC and REST).

See the README for a tour; the public names are re-exported here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tfs_async.errors import *  # noqa: F403
from tfs_async.errors import __all__ as _errors_all
from tfs_async.types import *  # noqa: F403
from tfs_async.types import __all__ as _types_all

if TYPE_CHECKING:
    from tfs_async.batching import BatchEvent as BatchEvent
    from tfs_async.batching import Batching as Batching
    from tfs_async.batching import BatchingStats as BatchingStats
    from tfs_async.batching import BatchQueueFullError as BatchQueueFullError
    from tfs_async.client import Client as Client
    from tfs_async.options import TLSConfig as TLSConfig
    from tfs_async.retry import RetryPolicy as RetryPolicy
    from tfs_async.sync import SyncClient as SyncClient
    from tfs_async.transport import GrpcTransport as GrpcTransport
    from tfs_async.transport import HttpTransport as HttpTransport
    from tfs_async.transport import Transport as Transport

__version__ = "0.1.0"

# The client and transports import grpc and aiohttp: load them on first use only.
_LAZY = {
    "BatchEvent": "tfs_async.batching",
    "Batching": "tfs_async.batching",
    "BatchingStats": "tfs_async.batching",
    "BatchQueueFullError": "tfs_async.batching",
    "Client": "tfs_async.client",
    "RetryPolicy": "tfs_async.retry",
    "SyncClient": "tfs_async.sync",
    "TLSConfig": "tfs_async.options",
    "GrpcTransport": "tfs_async.transport",
    "HttpTransport": "tfs_async.transport",
    "Transport": "tfs_async.transport",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tfs_async' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = ["__version__", *_errors_all, *_types_all, *_LAZY]
