"""What this test process holds: threads, sockets, child processes (read from /proc).

Copied into the user's suite beside its test files; a module-level snapshot is
taken at import (before any fixture runs) and compared by the last test.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path


def sockets() -> int:
    """Open TCP sockets (listeners and connections, IPv4 and IPv6) of this process.

    Unix socket pairs are not counted: grpc.aio's poller keeps one for the life
    of the process (see :func:`threads`).
    """
    tcp: set[str] = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                tcp.add(line.split()[9])  # the inode column
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # the descriptor of the listing itself is gone by now
            continue
        count += target.startswith("socket:[") and target[8:-1] in tcp
    return count


def children() -> set[int]:
    """Process ids of this process's children (any of its threads)."""
    pids: set[int] = set()
    for task in Path("/proc/self/task").iterdir():
        pids.update(int(p) for p in (task / "children").read_text().split())
    return pids


def threads() -> set[str]:
    """Names of this process's live Python threads, but two kinds that are no leak.

    grpc.aio starts one poller thread per process the first time it is used and
    keeps it for the life of the process (:func:`grpc_pollers` checks that there
    is never more than that one). A running event loop keeps the bounded pool of
    its default executor (threads ``asyncio_N``) until the loop closes.
    """
    return {
        t.name
        for t in threading.enumerate()
        if not t.name.endswith("(_poll_wrapper)") and not t.name.startswith("asyncio_")
    }


def grpc_pollers() -> int:
    """How many grpc.aio poller threads run."""
    return sum(t.name.endswith("(_poll_wrapper)") for t in threading.enumerate())


def snapshot() -> tuple[int, set[int], set[str]]:
    return sockets(), children(), threads()
