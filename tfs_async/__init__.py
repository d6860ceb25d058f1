"""tfs_async: an asyncio client SDK for TensorFlow Serving (gRPC and REST).

See the README for a tour; the public names are re-exported here.
"""

from __future__ import annotations

from tfs_async.errors import *  # noqa: F403
from tfs_async.errors import __all__ as _errors_all
from tfs_async.types import *  # noqa: F403
from tfs_async.types import __all__ as _types_all

__version__ = "0.1.0"

__all__ = ["__version__", *_errors_all, *_types_all]
