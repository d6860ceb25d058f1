"""The client subcommands of ``tfs-async``: metadata, status, predict, classify, regress,
reload-config.

Each talks to a TF Serving server (or the emulator) through :class:`tfs_async.Client`,
so every subcommand takes the client's options and works over gRPC and REST alike.
Exit status: 0 success; 1 a call failed (the server's or the client's typed error);
2 a usage error (bad flags, target, input syntax or file); 3 ``status --wait`` timed
out before the model was available; 4 ``predict --jsonl``: some lines failed.
"""

from __future__ import annotations

from tfs_async.commands.parsers import add_client_commands

__all__ = ["add_client_commands"]
