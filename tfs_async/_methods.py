"""Former name of :mod:`tfs_async._grpc_methods`; import that module instead.

Kept as a re-export until the last importers (the emulator's tests, the
benchmarks) have moved to the new name.
"""

from __future__ import annotations

from tfs_async._grpc_methods import *  # noqa: F403
from tfs_async._grpc_methods import __all__ as __all__
