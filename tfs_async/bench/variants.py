"""Contenders beyond the default client: another event loop (uvloop), another transport.

uvloop replaces the event loop, so its contenders cannot share the sweep's loop:
:func:`uvloop_pass` runs the SDK client over both protocols in a second sweep, in a
thread with its own uvloop loop, after the main sweep (nothing else runs meanwhile),
against the same server; its cells join the main result as
``tfs_async/grpc+uvloop`` and ``tfs_async/http+uvloop``. It needs the optional
``uvloop`` package (``pip install 'tfs-async[uvloop]'``).

The lean HTTP transport contender is added by :func:`lean_http_contenders` when
that transport is available.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from tfs_async.bench.contenders import ClientContender, Contender, Endpoints
from tfs_async.bench.payloads import make_payload
from tfs_async.bench.plan import SweepPlan
from tfs_async.bench.results import BenchResult

if TYPE_CHECKING:
    from tfs_async.transport.base import Transport

__all__ = ["lean_http_contenders", "merge_pass", "uvloop_available", "uvloop_pass"]


def uvloop_available() -> bool:
    """Whether the optional ``uvloop`` package is installed."""
    return importlib.util.find_spec("uvloop") is not None


def uvloop_pass(
    endpoints: Endpoints,
    protocols: Sequence[str],
    plan: SweepPlan,
    *,
    pool_size: int | None = None,
) -> BenchResult:
    """The SDK client over ``protocols`` swept again in a uvloop event loop (blocking).

    Call it from a thread (``asyncio.to_thread``): it runs its own loop. One repeat,
    closed loop only, the payloads small enough for the open loop: enough for a line
    per protocol beside the asyncio ones.
    """
    import uvloop

    from tfs_async.bench.runner import run_sweep

    contenders: list[Contender] = [
        ClientContender(protocol, pool_size=pool_size, variant="uvloop") for protocol in protocols
    ]
    # The small payloads (where the event loop's share of a request is largest), once.
    small = tuple(
        name
        for name in plan.payloads
        if (made := make_payload(name, endpoints.model)) is not None
        and made.nbytes <= plan.open_loop_max_payload_bytes
    )
    short = replace(plan, repeats=1, open_loop=False, payloads=small)
    loop = uvloop.new_event_loop()
    try:
        return loop.run_until_complete(
            run_sweep(
                endpoints,
                contenders,
                short,
                target_description="uvloop pass",
            )
        )
    finally:
        loop.close()


def merge_pass(result: BenchResult, extra: BenchResult, name: str) -> None:
    """Add ``extra``'s contender cells, wire sizes and notes to ``result`` (its harness dropped)."""
    keys = {c["key"] for c in extra.contenders if c["role"] != "harness"}
    result.contenders.extend(c for c in extra.contenders if c["key"] in keys)
    result.cells.extend(cell for cell in extra.cells if cell.contender in keys)
    for payload, sizes in extra.wire.items():
        result.wire.setdefault(payload, {}).update(
            {key: value for key, value in sizes.items() if key in keys}
        )
    result.notes.extend(f"{name}: {note}" for note in extra.notes)


# ---------------------------------------------------------------------------
# The lean HTTP transport contender. The transport is built separately; when its
# module is there, the benchmark adds it as "tfs_async/http+lean" (an HTTP client
# on asyncio.Protocol and httptools, compared with the aiohttp one on every payload).
_LEAN_MODULE = "tfs_async.transport.lean"
_LEAN_CLASS = "LeanHttpTransport"


def lean_http_contenders(pool_size: int | None = None) -> tuple[list[Contender], list[str]]:
    """The lean HTTP transport as a contender, if available; else a note saying why not."""
    if importlib.util.find_spec(_LEAN_MODULE) is None:
        return [], []
    try:
        transport_class: Any = getattr(importlib.import_module(_LEAN_MODULE), _LEAN_CLASS)
    except (ImportError, AttributeError) as exc:
        return [], [f"lean HTTP transport not benchmarked: {type(exc).__name__}: {exc}"]

    def make(endpoints: Endpoints, pool: int | None) -> Transport:
        kwargs = {} if pool is None else {"pool_size": pool}
        made: Transport = transport_class(endpoints.rest_url, **kwargs)
        return made

    return [ClientContender("http", pool_size=pool_size, variant="lean", transport=make)], []
