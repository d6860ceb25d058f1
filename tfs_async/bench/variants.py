"""Contenders beyond the default client: another event loop (uvloop), another transport.

uvloop replaces the event loop, so its contenders cannot share the sweep's loop:
:func:`uvloop_pass` runs the SDK client over both protocols in a second sweep, in a
thread with its own uvloop loop, after the main sweep (nothing else runs meanwhile),
against the same server; its cells join the main result as
``tfs_async/grpc+uvloop`` and ``tfs_async/http+uvloop``. It needs the optional
``uvloop`` package (``pip install 'tfs-async[uvloop]'``).

:func:`http_transport_contenders` adds the SDK client over the HTTP transport that
is not the default (``tfs_async/http+aiohttp`` or ``tfs_async/http+lean``).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from tfs_async.bench.contenders import ClientContender, Contender, Endpoints
from tfs_async.bench.payloads import make_payload
from tfs_async.bench.plan import SweepPlan
from tfs_async.bench.results import BenchResult

if TYPE_CHECKING:
    from tfs_async.transport.base import Transport

__all__ = ["http_transport_contenders", "merge_pass", "uvloop_available", "uvloop_pass"]


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


def http_transport_contenders(pool_size: int | None = None) -> tuple[list[Contender], list[str]]:
    """The SDK client over each HTTP transport other than the default, as its own line.

    ``tfs_async/http`` is the client as users get it (the default HTTP transport);
    ``tfs_async/http+aiohttp`` or ``tfs_async/http+lean`` is the other one, compared
    with it on every payload. A transport whose dependency is missing is left out
    with a note.
    """
    from tfs_async.transport.target import DEFAULT_HTTP_TRANSPORT, HTTP_TRANSPORTS, transport_for

    contenders: list[Contender] = []
    notes: list[str] = []
    for kind in HTTP_TRANSPORTS:
        if kind == DEFAULT_HTTP_TRANSPORT:
            continue
        try:
            transport_for("http://127.0.0.1:1", http_transport=kind)
        except ImportError as exc:
            notes.append(f"tfs_async/http+{kind} not benchmarked: {exc}")
            continue

        def make(endpoints: Endpoints, pool: int | None, kind: str = kind) -> Transport:
            return transport_for(endpoints.rest_url, pool_size=pool, http_transport=kind)

        contenders.append(
            ClientContender("http", pool_size=pool_size, variant=kind, transport=make)
        )
    return contenders, notes
